#pragma once

// The Linux x86 boot protocol's bzImage (Documentation/arch/x86/boot.rst):
// validating the setup header and loading the protected-mode kernel for the
// 64-bit entry point.

#include <asm/bootparam.h>

#include <cstdint>
#include <span>
#include <string>

#include "loader/loaded_kernel.h"
#include "memory/gpa.h"
#include "memory/guest_memory.h"

namespace keel {

// boot.rst "The Real-Mode Kernel Header": the setup header starts at 0x1f1.
inline constexpr uint64_t kSetupHeaderOffset = 0x1f1;
inline constexpr uint16_t kBootFlagMagic = 0xaa55;      // at 0x1fe
inline constexpr uint32_t kHdrSMagic = 0x53726448;      // "HdrS" at 0x202, little-endian
inline constexpr uint16_t kMinBootProtocol = 0x0206;    // cmdline_size (2.06)
inline constexpr uint16_t kXloadflagsProtocol = 0x020c; // xloadflags, XLF_KERNEL_64 (2.12)
// boot.rst "64-bit Boot Protocol": startup_64 sits 0x200 into the protected-mode kernel.
inline constexpr uint64_t kBzImageEntry64Offset = 0x200;

// A validated bzImage: every field keel relies on has been checked.
struct BzImage {
    // The setup header as the file declares it; bytes past the header's own
    // end (0x202 + the byte at 0x201) are code, so they are zeroed here.
    setup_header header{};
    uint64_t payload_offset = 0;  // (setup_sects + 1) * 512: the protected-mode kernel starts here
    uint64_t payload_size = 0;    // the rest of the file (>= syssize * 16)
};

// Where the kernel sits in guest memory once loaded at `load`.
struct BzImageLayout {
    Gpa load;
    Gpa entry64;
    // boot.rst "init_size": the kernel needs [runtime_start, runtime_start +
    // init_size) to decompress itself before it reads the memory map.
    Gpa runtime_start;
    uint64_t init_size = 0;
    Gpa end;  // max(load + payload, runtime_start + init_size)
};

// Pure parsing and validation; throws keel::Error naming `name` on any problem.
[[nodiscard]] BzImage parse_bzimage(std::span<const uint8_t> image, const std::string& name);

// The layout for a kernel loaded at `load`; throws if the header's addresses overflow.
[[nodiscard]] BzImageLayout bzimage_layout(const BzImage& bz, Gpa load, const std::string& name);

// Parses `image`, copies its protected-mode kernel to kHighMemStart (1 MiB)
// and checks the decompression area lies in guest RAM.
[[nodiscard]] LoadedKernel load_bzimage(std::span<const uint8_t> image, const GuestMemory& mem,
                                        const std::string& name);

// "2.15" for 0x020f.
[[nodiscard]] std::string boot_protocol_string(uint16_t version);

}  // namespace keel
