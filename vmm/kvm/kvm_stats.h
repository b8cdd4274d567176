#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>

namespace keel {

// KVM's binary statistics (KVM_GET_STATS_FD, Documentation/virt/kvm/api.rst
// "KVM_GET_STATS_FD"): the in-kernel view of a vCPU, including the exits KVM
// handled without ever returning to keel (HLT, interrupts, MSRs, NPT faults).

// Pure: every cumulative single-value counter in a stats file image (header,
// descriptors, data), by name. A malformed image gives what parsed so far.
[[nodiscard]] std::map<std::string, uint64_t> parse_kvm_stats(std::span<const uint8_t> image);

// Reads the stats fd of a vCPU or VM now; empty when the kernel has none.
[[nodiscard]] std::map<std::string, uint64_t> read_kvm_stats(int object_fd);

}  // namespace keel
