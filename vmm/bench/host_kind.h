#pragma once

#include <string>

namespace keel::bench {

// What the host keel runs on is, as the CPU reports it (CPUID leaf 1 ECX
// bit 31 and the hypervisor signature at leaf 0x40000000): benchmark
// figures from a nested or emulated host are not bare-metal figures, and the
// reports say so.
struct HostKind {
    std::string description;  // "bare metal", "nested (hypervisor KVMKVMKVM)", "emulated (QEMU TCG)"
    bool emulated = false;    // QEMU TCG: times are meaningless
};

[[nodiscard]] HostKind host_kind();

// Pure: the classification from what CPUID said.
[[nodiscard]] HostKind classify_host(bool hypervisor_bit, const std::string& signature);

}  // namespace keel::bench
