#pragma once

// The guest's RAM layout and the memory map keel reports for it (the BIOS
// INT 15h E820 map in boot_params, and the same entries as the PVH memmap).

#include <asm/e820.h>

#include <cstdint>
#include <vector>

#include "memory/gpa.h"
#include "memory/guest_memory.h"

namespace keel::x86 {

// One memory map entry; `type` is E820_RAM or E820_RESERVED from <asm/e820.h>
// (the PVH memmap uses the same numbers: XEN_HVM_MEMMAP_TYPE_RAM = 1, _RESERVED = 2).
struct E820Entry {
    Gpa addr;
    uint64_t size = 0;
    uint32_t type = E820_RAM;

    [[nodiscard]] uint64_t end() const { return addr.value + size; }
    bool operator==(const E820Entry&) const = default;
};

// The guest RAM regions for `mem_size` bytes: [0, min(size, 3 GiB)) and, for
// the rest, [4 GiB, 4 GiB + rest) above the 32-bit MMIO hole. `mem_size` must
// be a multiple of 4 KiB and larger than 1 MiB; throws keel::Error otherwise.
[[nodiscard]] std::vector<MemoryRegionSpec> guest_ram_regions(uint64_t mem_size);

// The memory map for RAM `regions` (as from guest_ram_regions): RAM below the
// EBDA, [kEbdaStart, 1 MiB) reserved (MP table, ACPI tables at 0xe0000, the
// legacy VGA/BIOS hole), RAM above. The MMIO hole is simply not listed.
[[nodiscard]] std::vector<E820Entry> build_e820_map(const std::vector<MemoryRegionSpec>& regions);
[[nodiscard]] std::vector<E820Entry> build_e820_map(const GuestMemory& mem);

}  // namespace keel::x86
