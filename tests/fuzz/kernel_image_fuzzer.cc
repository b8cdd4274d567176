// libFuzzer target: arbitrary bytes as a kernel image. The parsers must either
// accept the bytes or throw keel::Error — never crash, read out of bounds or
// write outside guest RAM. Accepted images are also loaded into a small guest.

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/error.h"
#include "loader/bzimage.h"
#include "loader/elf_pvh.h"
#include "loader/kernel_loader.h"
#include "memory/guest_memory.h"

namespace {

const keel::GuestMemory& fuzz_guest_memory() {
    // 32 MiB, lazily mapped: big enough that valid layouts (kernels at 1 or
    // 16 MiB) really get copied, small enough to make oversized ones fail.
    static const keel::GuestMemory mem = keel::GuestMemory::create({{keel::Gpa(0), 32ull << 20}});
    return mem;
}

template <typename Fn>
void expect_accept_or_error(Fn&& fn) {
    try {
        fn();
    } catch (const keel::Error&) {
        // Rejecting hostile input with a message is the expected outcome.
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> image(data, size);
    static_cast<void>(keel::detect_kernel_format(image));
    expect_accept_or_error([&] { static_cast<void>(keel::parse_bzimage(image, "fuzz")); });
    expect_accept_or_error([&] { static_cast<void>(keel::parse_elf_pvh(image, "fuzz")); });
    expect_accept_or_error([&] { static_cast<void>(keel::load_kernel_image(image, fuzz_guest_memory(), "fuzz")); });
    return 0;
}
