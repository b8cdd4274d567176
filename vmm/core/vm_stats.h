#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/exit_counters.h"
#include "core/memory_overhead.h"

namespace keel {

// A boot-timer mark written by the guest.
struct GuestMark {
    std::string source;  // "mmio" (Firecracker-style, 0xC0000000) or "port80" (Cloud Hypervisor-style)
    uint8_t code = 0;
    uint64_t at_ns = 0;  // CLOCK_MONOTONIC
};

struct NamedDevice {
    uint64_t base;
    uint64_t length;
    std::string name;
};

// A virtio device's counters when the VM stopped ("requests", "kicks", ...).
struct DeviceStats {
    std::string name;       // "blk0", "rng"
    std::string type;       // "block", "entropy"
    std::string transport;  // "pci 00:01.0", "mmio 0xd0001000"
    std::vector<std::pair<std::string, uint64_t>> counters;
    std::vector<std::string> queues;  // Queue::describe_state() per queue, "q0 avail ..."
};

// What one VM run cost, gathered while it runs and reported when it ends.
// Phases are recorded by the main thread; guest marks arrive from vCPU
// threads (through the boot-timer device) under a lock.
class VmStats {
public:
    VmStats();

    void phase(const std::string& name);  // "now" for the named phase
    void phase_at(const std::string& name, uint64_t at_ns);
    void guest_mark(const std::string& source, uint8_t code, uint64_t at_ns);

    std::string stop_reason;
    std::string stop_detail;
    uint32_t vcpus = 0;
    uint64_t guest_memory_bytes = 0;
    std::string guest_memory_backing;  // page_backing_name()
    // --seccomp and how many system calls each thread role's filter allows
    // (docs/security.md); empty counts with --seccomp off.
    std::string seccomp_mode;
    std::map<std::string, uint64_t> seccomp_allowed_syscalls;
    ExitCounters exits;
    // KVM's in-kernel counters summed over vCPUs ("exits" counts every VM
    // exit, most of which never reach keel); empty without KVM_GET_STATS_FD.
    std::map<std::string, uint64_t> kvm_counters;
    std::vector<NamedDevice> pio_devices;
    std::vector<NamedDevice> mmio_devices;
    MemoryBreakdown memory;
    std::vector<DeviceStats> devices;
    std::vector<std::string> vcpus_at_stop;  // VcpuRunner::state_at_stop(), by vCPU index

    [[nodiscard]] nlohmann::json to_json() const;
    [[nodiscard]] std::string to_text() const;
    // The phases so far, then the guest's marks ("guest mmio 123", "guest
    // port80 0x61"), in ms since keel started. Main thread.
    [[nodiscard]] std::vector<std::pair<std::string, double>> boot_times_ms() const;

private:
    [[nodiscard]] double ms_since_start(uint64_t at_ns) const;
    [[nodiscard]] std::string device_name(const std::vector<NamedDevice>& ranges, uint64_t addr) const;

    uint64_t m_start_ns;
    std::vector<std::pair<std::string, uint64_t>> m_phases;
    mutable std::mutex m_marks_mutex;
    std::vector<GuestMark> m_marks;
};

}  // namespace keel
