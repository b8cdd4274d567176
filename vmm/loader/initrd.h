#pragma once

// Placing the initial ramdisk: as high as the kernel allows, so it stays out
// of the way of the kernel's decompression and early allocations (what
// GRUB and QEMU do too; boot.rst "initrd_addr_max").

#include <cstdint>
#include <optional>
#include <string>

#include "loader/loaded_kernel.h"
#include "memory/gpa.h"
#include "memory/guest_memory.h"

namespace keel {

struct LoadedInitrd {
    Gpa gpa;
    uint64_t size = 0;
};

inline constexpr uint64_t kInitrdAlignment = 4096;

// Pure: the highest page-aligned address A with [A, A + size) inside one RAM
// region, A >= lowest and A + size <= limit; nullopt when there is none.
[[nodiscard]] std::optional<Gpa> find_initrd_slot(const GuestMemory& mem, uint64_t size, Gpa lowest, Gpa limit);

// Reads the initrd at `path` into the highest slot above kernel.end and below
// kernel.initrd_limit. Throws keel::Error, e.g. "initrd 'x' (300 MiB) does not
// fit in guest memory (256 MiB) below 0x80000000 and above the kernel's end at 0x4378000".
[[nodiscard]] LoadedInitrd load_initrd(const std::string& path, const GuestMemory& mem, const LoadedKernel& kernel);

}  // namespace keel
