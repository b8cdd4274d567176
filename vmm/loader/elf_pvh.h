#pragma once

// ELF vmlinux with a PVH entry point (Xen docs/misc/pvh.pandoc; Linux
// arch/x86/platform/pvh/head.S emits the note when built with CONFIG_PVH=y).

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "loader/loaded_kernel.h"
#include "memory/gpa.h"
#include "memory/guest_memory.h"

namespace keel {

// xen/include/public/elfnote.h: the 32-bit physical entry point for PVH boot.
inline constexpr uint32_t kXenElfnotePhys32Entry = 18;

// One PT_LOAD segment, already range-checked against the file.
struct ElfLoadSegment {
    uint64_t file_offset = 0;
    uint64_t file_size = 0;
    Gpa paddr;
    uint64_t mem_size = 0;  // >= file_size; the tail is zero-filled (bss)
};

struct ElfPvhImage {
    std::vector<ElfLoadSegment> segments;  // sorted by paddr, non-overlapping, all >= 1 MiB
    Gpa pvh_entry;                          // inside one of the segments' file-backed bytes
};

// Pure parsing and validation of an ELF64 x86_64 vmlinux; throws keel::Error
// naming `name` on any problem, including a missing PVH note.
[[nodiscard]] ElfPvhImage parse_elf_pvh(std::span<const uint8_t> image, const std::string& name);

// Parses `image`, copies each PT_LOAD segment to its p_paddr and zeroes its
// bss tail; every segment must lie inside guest RAM.
[[nodiscard]] LoadedKernel load_elf_pvh(std::span<const uint8_t> image, const GuestMemory& mem,
                                        const std::string& name);

}  // namespace keel
