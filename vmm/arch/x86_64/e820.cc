#include "arch/x86_64/e820.h"

#include <algorithm>

#include "arch/x86_64/layout.h"
#include "common/error.h"
#include "common/units.h"

namespace keel::x86 {

namespace {

constexpr uint64_t kPageSize = 4096;

// Appends the RAM parts of [start, end) outside the reserved low window.
void add_ram_around_reserved_window(std::vector<E820Entry>& map, uint64_t start, uint64_t end) {
    const uint64_t window_start = kEbdaStart.value;
    const uint64_t window_end = kHighMemStart.value;
    if (start < window_start) {
        const uint64_t below_end = std::min(end, window_start);
        map.push_back({Gpa(start), below_end - start, E820_RAM});
    }
    if (end > window_end) {
        const uint64_t above_start = std::max(start, window_end);
        map.push_back({Gpa(above_start), end - above_start, E820_RAM});
    }
}

}  // namespace

std::vector<MemoryRegionSpec> guest_ram_regions(uint64_t mem_size) {
    if (mem_size <= kHighMemStart.value) {
        throw Error("guest memory size " + format_size(mem_size) + " is too small: keel needs more than 1 MiB");
    }
    if (mem_size % kPageSize != 0) {
        throw Error("guest memory size " + format_size(mem_size) + " is not a multiple of 4 KiB");
    }
    const uint64_t low = std::min(mem_size, kMmioHoleStart.value);
    std::vector<MemoryRegionSpec> regions{{Gpa(0), low}};
    if (mem_size > low) {
        if (mem_size - low > UINT64_MAX - kMemAbove4gStart.value) {
            throw Error("guest memory size " + format_size(mem_size) + " does not fit the address space");
        }
        regions.push_back({kMemAbove4gStart, mem_size - low});
    }
    return regions;
}

std::vector<E820Entry> build_e820_map(const std::vector<MemoryRegionSpec>& regions) {
    // Always listed: keel puts the MP table and the ACPI tables there.
    std::vector<E820Entry> map{{kEbdaStart, kHighMemStart.value - kEbdaStart.value, E820_RESERVED}};
    for (const auto& region : regions) {
        add_ram_around_reserved_window(map, region.start.value, region.start.value + region.size);
    }
    std::sort(map.begin(), map.end(), [](const auto& a, const auto& b) { return a.addr < b.addr; });
    return map;
}

std::vector<E820Entry> build_e820_map(const GuestMemory& mem) {
    std::vector<MemoryRegionSpec> regions;
    for (const auto& region : mem.regions()) regions.push_back({region.start, region.size});
    return build_e820_map(regions);
}

}  // namespace keel::x86
