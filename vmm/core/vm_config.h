#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/units.h"
#include "memory/guest_memory.h"
#include "security/seccomp_filter.h"
#include "virtio/block/disk_options.h"
#include "virtio/net/net_options.h"

namespace keel {

// How virtio devices reach the guest. PCI is the default: every distribution
// kernel has virtio_pci and finds devices by plain PCI enumeration (ACPI or
// not), and MSI-X gives each queue its own interrupt. virtio-mmio is the
// Firecracker-style alternative: fewer registers and no PCI enumeration at
// boot; the guest finds it through ACPI (LNRO0005) or, with acpi=off,
// virtio_mmio.device= parameters keel appends. docs/architecture.md has the
// measured difference.
enum class VirtioTransportKind : uint8_t { Pci, Mmio };

// Everything needed to build one VM. The command line, a Firecracker config
// file and the API's requests (api::VmResources) all map onto it.
struct VmConfig {
    std::string kernel_path;
    std::string initrd_path;  // empty: no initrd
    std::string cmdline = kDefaultCmdline;
    uint32_t vcpus = 1;
    uint64_t memory_bytes = 256 * MiB;
    GuestPageBacking page_backing = GuestPageBacking::Normal;  // --hugepages, --thp

    VirtioTransportKind transport = VirtioTransportKind::Pci;
    std::vector<block::DiskOptions> disks;  // vda, vdb, ... in this order
    std::vector<net::NetOptions> nets;      // eth0, eth1, ... in this order (on PCI)
    bool rng = false;                       // virtio-rng backed by getrandom(2)

    // Each thread's system calls are limited to its role's list before it
    // runs guest-influenced code (docs/security.md).
    security::SeccompMode seccomp = security::kDefaultSeccompMode;

    bool print_stats = false;
    std::string stats_json_path;  // empty: don't write
    // Statistics cost syscalls at the stop (KVM's stats fds, /proc/self/smaps):
    // only a run that reports them gathers them.
    [[nodiscard]] bool stats_requested() const { return print_stats || !stats_json_path.empty(); }

    // Serial console on the terminal: reboot=k makes a guest `reboot` reset
    // through the i8042 (an exit keel sees), panic=-1 turns a panic into an
    // immediate reboot instead of a hang.
    static constexpr const char* kDefaultCmdline = "console=ttyS0 reboot=k panic=-1";
};

inline constexpr uint32_t kMinVcpus = 1;
inline constexpr uint64_t kMinMemory = 16 * MiB;

// Checks the config against fixed limits and this host (memory size). Throws
// keel::Error with the flag named.
void validate_config(const VmConfig& config, uint64_t host_memory_bytes);

// MemTotal from /proc/meminfo, in bytes.
[[nodiscard]] uint64_t host_memory_bytes();

}  // namespace keel
