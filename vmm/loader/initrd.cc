#include "loader/initrd.h"

#include <algorithm>

#include "common/error.h"
#include "loader/format.h"
#include "loader/image_file.h"

namespace keel {

namespace {

uint64_t align_down(uint64_t value) { return value & ~(kInitrdAlignment - 1); }

std::optional<uint64_t> align_up(uint64_t value) {
    if (value > UINT64_MAX - (kInitrdAlignment - 1)) return std::nullopt;
    return align_down(value + kInitrdAlignment - 1);
}

// The highest aligned start for `size` bytes inside [lo, hi); lo is aligned.
std::optional<uint64_t> highest_start(uint64_t lo, uint64_t hi, uint64_t size) {
    if (hi <= lo || hi - lo < size) return std::nullopt;
    const uint64_t start = align_down(hi - size);
    if (start < lo) return std::nullopt;
    return start;
}

}  // namespace

std::optional<Gpa> find_initrd_slot(const GuestMemory& mem, uint64_t size, Gpa lowest, Gpa limit) {
    const auto aligned_lowest = align_up(lowest.value);
    if (!aligned_lowest || size == 0) return std::nullopt;
    std::optional<uint64_t> best;
    for (const auto& region : mem.regions()) {
        const uint64_t lo = std::max(region.start.value, *aligned_lowest);
        const uint64_t hi = std::min(region.end(), limit.value);
        const auto start = highest_start(lo, hi, size);
        if (start && (!best || *start > *best)) best = start;
    }
    if (!best) return std::nullopt;
    return Gpa(*best);
}

LoadedInitrd load_initrd(const std::string& path, const GuestMemory& mem, const LoadedKernel& kernel) {
    const OpenedFile file = open_regular_file(path, "initrd");
    if (file.size == 0) throw Error("initrd '" + path + "' is empty");
    const auto slot = find_initrd_slot(mem, file.size, kernel.end, kernel.initrd_limit);
    if (!slot) {
        throw Error("initrd '" + path + "' (" + approx_size(file.size) + ") does not fit in guest memory (" +
                    format_size(mem.total_size()) + ") below " + to_hex(kernel.initrd_limit.value) +
                    " and above the kernel's end at " + to_hex(kernel.end.value) + "; give the VM more memory");
    }
    // The slot lies inside one region, so the slice exists.
    const auto slice = mem.slice(*slot, file.size);
    if (!slice) throw Error("initrd '" + path + "': internal error placing it at " + to_hex(slot->value));
    // The kernel reads the file straight into guest RAM, without a bounce buffer.
    (void)mem.populate_for_write(*slot, file.size);
    read_exact(file, slice->as_iov_base(), file.size, 0, "initrd", path);
    return LoadedInitrd{*slot, file.size};
}

}  // namespace keel
