#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keel {

// Host memory of the keel process by kind, from /proc/self/smaps. Guest RAM
// is reported separately: the VMM's overhead is everything else.
struct MemoryKind {
    uint64_t rss_kib = 0;
    uint64_t pss_kib = 0;
    void add(uint64_t rss, uint64_t pss) {
        rss_kib += rss;
        pss_kib += pss;
    }
};

struct MemoryBreakdown {
    MemoryKind binary;       // keel's own executable (text, data)
    MemoryKind libraries;    // shared libraries and other file mappings
    MemoryKind heap;         // [heap] and anonymous mappings (malloc arenas, device buffers)
    MemoryKind stacks;       // the main stack and every registered thread stack
    MemoryKind kvm;          // kvm_run pages and other KVM anon-inode mappings
    MemoryKind other;        // vdso, vvar, ...
    MemoryKind guest_ram;    // guest RAM the guest has touched (not overhead)

    [[nodiscard]] MemoryKind overhead() const;
};

using AddressRange = std::pair<uint64_t, uint64_t>;  // [first, second)

// Pure: classifies every mapping in `smaps` text. `exe_path` is keel's binary.
[[nodiscard]] MemoryBreakdown classify_smaps(std::string_view smaps, const std::vector<AddressRange>& guest_ram,
                                             const std::vector<AddressRange>& thread_stacks,
                                             std::string_view exe_path);

// Reads /proc/self/smaps now.
[[nodiscard]] MemoryBreakdown measure_memory(const std::vector<AddressRange>& guest_ram);

// Every thread that should count as a stack calls this once when it starts.
void register_current_thread_stack();

}  // namespace keel
