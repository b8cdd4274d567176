#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/memory_overhead.h"

// What `keel bench compare` reads about a running system from outside it:
// memory from /proc/PID/smaps of its processes, VM exits from KVM's debugfs.
// It reads every VMM the same way (keel included), so the figures compare.
namespace keel::bench {

// Pure: the guest RAM of a VMM we did not write, in its smaps text: every
// anonymous mapping at least half as large as the guest's memory. A VMM maps
// guest RAM as one (or a few, split at the PCI hole) anonymous mappings the
// size of the guest; nothing else in a VMM is that large.
[[nodiscard]] std::vector<AddressRange> guest_ram_mappings(std::string_view smaps, uint64_t guest_memory_bytes);

// `pid` and every process descended from it, from /proc/*/stat.
[[nodiscard]] std::vector<pid_t> process_tree(pid_t pid);

// Host memory of a process tree right now: each process's smaps classified,
// with guest RAM (see guest_ram_mappings; none when guest_memory_bytes is 0)
// apart. Processes that are gone by the time they are read are skipped.
struct TreeMemory {
    MemoryKind overhead;   // everything but guest RAM
    MemoryKind guest_ram;  // guest RAM the guest touched
    unsigned processes = 0;
};
[[nodiscard]] TreeMemory measure_process_tree(pid_t pid, uint64_t guest_memory_bytes);

// Pure: the names in KVM's debugfs directory that belong to VMs created by
// `pid` ("<pid>-<vm fd>").
[[nodiscard]] std::vector<std::string> kvm_debugfs_vm_dirs(const std::vector<std::string>& entries, pid_t pid);

// Every exit of every vCPU of the VMs `pid` created, as KVM counts them
// (`exits` in /sys/kernel/debug/kvm/<pid>-<fd>/), or nullopt when debugfs is
// not mounted or readable, or the process has no VM.
[[nodiscard]] std::optional<uint64_t> kvm_exits_of(pid_t pid, const std::string& debugfs_kvm = "/sys/kernel/debug/kvm");

}  // namespace keel::bench
