#pragma once

// Loading the kernel image a user names: detect its format, validate it and
// copy it into guest memory.

#include <cstdint>
#include <span>
#include <string>

#include "loader/loaded_kernel.h"
#include "memory/guest_memory.h"

namespace keel {

enum class KernelFormat {
    BzImage,  // boot_flag 0xaa55 at 0x1fe or "HdrS" at 0x202
    Elf,      // "\x7fELF"
    Unknown,
};

// Kernels are < 100 MiB; anything far larger is a mistake (a disk image?).
inline constexpr uint64_t kMaxKernelImageSize = 512ull * 1024 * 1024;

// Pure: looks only at the magic numbers; validation happens in the parsers.
[[nodiscard]] KernelFormat detect_kernel_format(std::span<const uint8_t> image);

// Dispatches on the format and loads `image` (the whole file) into `mem`.
// `name` is the path used in error messages.
[[nodiscard]] LoadedKernel load_kernel_image(std::span<const uint8_t> image, const GuestMemory& mem,
                                             const std::string& name);

// Reads the file at `path` and loads it; throws keel::Error with a one-line
// message (e.g. "cannot open kernel image 'x': No such file or directory").
[[nodiscard]] LoadedKernel load_kernel(const std::string& path, const GuestMemory& mem);

}  // namespace keel
