#include "loader/bzimage.h"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>
#include <optional>

#include "arch/x86_64/layout.h"
#include "common/error.h"
#include "loader/format.h"

namespace keel {

namespace {

constexpr uint64_t kSectorSize = 512;
// boot.rst: "If setup_sects is 0, the real value is 4."
constexpr uint8_t kDefaultSetupSects = 4;
// boot.rst: the header ends at 0x202 + the byte at 0x201 (the jump's offset).
constexpr uint64_t kJumpOffsetByte = 0x201;
constexpr uint64_t kHeaderMagicOffset = 0x202;
// The last field keel reads for protocol 2.12 is init_size (2.10).
constexpr uint64_t kRequiredHeaderEnd =
    kSetupHeaderOffset + offsetof(setup_header, init_size) + sizeof(setup_header::init_size);

std::string image_name(const std::string& name) { return "kernel image '" + name + "'"; }

[[noreturn]] void fail(const std::string& name, const std::string& problem) {
    throw Error(image_name(name) + " " + problem);
}

// Copies the header bytes the file declares as header; the remainder of the
// struct stays zero so code bytes never masquerade as newer fields.
setup_header copy_declared_header(std::span<const uint8_t> image, const std::string& name) {
    const uint64_t declared_end = kHeaderMagicOffset + image[kJumpOffsetByte];
    if (declared_end < kRequiredHeaderEnd) {
        fail(name, "has a setup header that ends at " + to_hex(declared_end) +
                       ", before the boot protocol 2.12 fields end at " + to_hex(kRequiredHeaderEnd));
    }
    setup_header header{};
    const uint64_t length = std::min<uint64_t>(declared_end - kSetupHeaderOffset, sizeof header);
    std::memcpy(&header, image.data() + kSetupHeaderOffset, length);
    return header;
}

void check_magic(const setup_header& hdr, const std::string& name) {
    if (hdr.boot_flag != kBootFlagMagic) {
        fail(name, "is not a bzImage: boot_flag at 0x1fe is " + to_hex(hdr.boot_flag) + ", expected 0xaa55");
    }
    if (hdr.header != kHdrSMagic) fail(name, "is not a bzImage: no \"HdrS\" magic at offset 0x202");
}

void check_protocol(const setup_header& hdr, const std::string& name) {
    const std::string version = boot_protocol_string(hdr.version);
    if (hdr.version < kMinBootProtocol) {
        fail(name, "uses boot protocol " + version + ", which is too old; keel needs 2.06 or newer");
    }
    if (hdr.version < kXloadflagsProtocol) {
        fail(name, "has no 64-bit entry point: boot protocol " + version +
                       " predates XLF_KERNEL_64 (protocol 2.12, Linux 3.8); keel enters kernels in 64-bit mode");
    }
}

void check_flags(const setup_header& hdr, const std::string& name) {
    if ((hdr.xloadflags & XLF_KERNEL_64) == 0) {
        fail(name, "has no 64-bit entry point (XLF_KERNEL_64 is not set in xloadflags); "
                   "keel enters kernels in 64-bit mode");
    }
    if ((hdr.loadflags & LOADED_HIGH) == 0) {
        fail(name, "is a zImage (LOADED_HIGH is not set in loadflags); keel needs a bzImage");
    }
    if (hdr.relocatable_kernel != 0 && !std::has_single_bit(hdr.kernel_alignment)) {
        fail(name, "has an invalid kernel_alignment " + to_hex(hdr.kernel_alignment) +
                       " (must be a power of two)");
    }
    if (hdr.init_size == 0) fail(name, "has init_size 0 in its setup header");
}

// The real-mode setup (boot sector included) precedes the protected-mode kernel.
uint64_t setup_size(const setup_header& hdr) {
    const uint64_t sects = hdr.setup_sects == 0 ? kDefaultSetupSects : hdr.setup_sects;
    return (sects + 1) * kSectorSize;
}

void check_sizes(const setup_header& hdr, uint64_t file_size, const std::string& name) {
    const uint64_t setup = setup_size(hdr);
    if (file_size < setup) {
        fail(name, "is truncated: its setup code needs " + std::to_string(setup) + " bytes (setup_sects " +
                       std::to_string(hdr.setup_sects) + ") but the file has " + std::to_string(file_size));
    }
    // syssize counts 16-byte paragraphs (32 bits wide since protocol 2.04).
    const uint64_t payload = uint64_t{hdr.syssize} * 16;
    if (payload == 0) fail(name, "has an empty protected-mode kernel (syssize 0)");
    if (file_size - setup < payload) {
        fail(name, "is truncated: the protected-mode kernel needs " + std::to_string(payload) +
                       " bytes after the setup code but the file has " + std::to_string(file_size - setup));
    }
}

std::optional<uint64_t> checked_align_up(uint64_t value, uint64_t alignment) {
    if (alignment <= 1) return value;
    const uint64_t mask = alignment - 1;
    if (value > UINT64_MAX - mask) return std::nullopt;
    return (value + mask) & ~mask;
}

}  // namespace

std::string boot_protocol_string(uint16_t version) {
    return std::to_string(version >> 8) + "." + (((version & 0xff) < 10) ? "0" : "") +
           std::to_string(version & 0xff);
}

BzImage parse_bzimage(std::span<const uint8_t> image, const std::string& name) {
    if (image.size() < kSetupHeaderOffset + sizeof(setup_header)) {
        fail(name, "is truncated: " + std::to_string(image.size()) + " bytes, too short for a bzImage setup header");
    }
    setup_header raw{};
    std::memcpy(&raw, image.data() + kSetupHeaderOffset, sizeof raw);
    check_magic(raw, name);
    check_protocol(raw, name);
    BzImage bz;
    bz.header = copy_declared_header(image, name);
    check_flags(bz.header, name);
    check_sizes(bz.header, image.size(), name);
    bz.payload_offset = setup_size(bz.header);
    bz.payload_size = image.size() - bz.payload_offset;
    return bz;
}

BzImageLayout bzimage_layout(const BzImage& bz, Gpa load, const std::string& name) {
    // Copies: setup_header is packed and these fields are misaligned, so
    // binding them to a const reference (std::max, std::optional's
    // constructor) would be undefined behaviour.
    const uint64_t pref_address = bz.header.pref_address;
    const uint64_t kernel_alignment = bz.header.kernel_alignment;
    const uint64_t init_size = bz.header.init_size;
    // boot.rst "init_size": the kernel runtime start address.
    std::optional<uint64_t> runtime_start = pref_address;
    if (bz.header.relocatable_kernel != 0) {
        runtime_start = checked_align_up(std::max(load.value, pref_address), kernel_alignment);
    }
    const auto payload_end = load.checked_add(bz.payload_size);
    const auto runtime_end = runtime_start ? Gpa(*runtime_start).checked_add(init_size) : std::nullopt;
    if (!payload_end || !runtime_end) {
        fail(name, "has a pref_address/kernel_alignment/init_size that overflows the address space");
    }
    BzImageLayout layout;
    layout.load = load;
    layout.entry64 = load.unchecked_add(kBzImageEntry64Offset);
    layout.runtime_start = Gpa(*runtime_start);
    layout.init_size = init_size;
    layout.end = std::max(*payload_end, *runtime_end);
    return layout;
}

LoadedKernel load_bzimage(std::span<const uint8_t> image, const GuestMemory& mem, const std::string& name) {
    const BzImage bz = parse_bzimage(image, name);
    const BzImageLayout layout = bzimage_layout(bz, x86::kHighMemStart, name);
    const std::string guest_size = format_size(mem.total_size());
    if (!mem.contains(layout.runtime_start, layout.init_size)) {
        fail(name, "needs " + approx_size(layout.init_size) + " of guest memory at " +
                       to_hex(layout.runtime_start.value) + " to decompress itself (init_size), more than the " +
                       guest_size + " guest has there; give the VM more memory");
    }
    const auto payload = image.subspan(static_cast<size_t>(bz.payload_offset));
    (void)mem.populate_for_write(layout.load, payload.size());
    if (!mem.write(layout.load, payload)) {
        fail(name, "(" + approx_size(payload.size()) + " protected-mode kernel) does not fit in guest memory (" +
                       guest_size + ") at " + to_hex(layout.load.value));
    }
    LoadedKernel kernel;
    kernel.protocol = BootProtocol::Linux64;
    kernel.entry = layout.entry64;
    kernel.end = layout.end;
    // initrd_addr_max is the highest address the initrd may occupy (inclusive).
    kernel.initrd_limit = std::min(Gpa(uint64_t{bz.header.initrd_addr_max} + 1), x86::kMmioHoleStart);
    kernel.setup = bz.header;
    return kernel;
}

}  // namespace keel
