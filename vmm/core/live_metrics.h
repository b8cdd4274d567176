#pragma once

// What a running VM has done so far, read on the main thread while the vCPUs
// run (for the metrics file and GET /metrics): cumulative counts, boot times
// and memory. vCPU threads keep their counts in LiveVcpuCounts.

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/memory_overhead.h"

namespace keel {

// One vCPU thread's exits as they happen. Each counter has one writer (its
// vCPU thread), so an increment is a plain load and store, no locked
// instruction on the exit path; readers on other threads see a recent value.
struct LiveVcpuCounts {
    std::atomic<uint64_t> exits{0};  // every exit KVM_RUN returned with
    std::atomic<uint64_t> io_in{0};
    std::atomic<uint64_t> io_out{0};
    std::atomic<uint64_t> mmio_read{0};
    std::atomic<uint64_t> mmio_write{0};
    std::atomic<uint64_t> failures{0};  // KVM_RUN errors, failed entries, internal errors, unexpected exits

    static void bump(std::atomic<uint64_t>& counter) {
        counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
};

using NamedCount = std::pair<std::string, uint64_t>;

struct LiveDeviceCounts {
    std::string type;  // "block", "net", "entropy"
    std::string name;  // the device's id: "rootfs", "net0", "rng"
    std::vector<NamedCount> counters;
};

struct LiveMetrics {
    bool paused = false;
    // Summed over vCPUs, Firecracker's names: "exit_io_in", "exit_io_out",
    // "exit_mmio_read", "exit_mmio_write", "failures", and keel's "exits".
    std::vector<NamedCount> vcpu;
    std::vector<LiveDeviceCounts> devices;
    // keel's phases and the guest's boot-timer marks, in ms since keel started.
    std::vector<std::pair<std::string, double>> boot_ms;
    MemoryBreakdown memory;
};

}  // namespace keel
