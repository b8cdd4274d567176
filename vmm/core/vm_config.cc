#include "core/vm_config.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "arch/x86_64/layout.h"
#include "common/error.h"

namespace keel {

namespace {

// Two --disk options naming one file would take two locks on it (the second
// fails as if another process used it) or alias one disk: refuse both.
void validate_disks(const std::vector<block::DiskOptions>& disks) {
    std::set<std::string> ids;
    std::set<std::string> paths;
    for (const auto& disk : disks) {
        if (!disk.id.empty() && !ids.insert(disk.id).second) throw Error("--disk id=" + disk.id + ": used twice");
        std::error_code error;
        const auto canonical = std::filesystem::weakly_canonical(disk.path, error);
        const std::string key = error ? disk.path : canonical.string();
        if (!paths.insert(key).second) throw Error("--disk path=" + disk.path + ": the same image is given twice");
    }
}

// Two NICs on one TAP queue would split its frames between them, and two
// with one MAC confuse every switch: refuse, naming the option.
void validate_nets(const std::vector<net::NetOptions>& nets) {
    std::set<std::string> ids;
    std::set<std::string> taps;
    std::set<int> fds;
    std::set<std::string> macs;
    for (size_t i = 0; i < nets.size(); ++i) {
        const auto& nic = nets[i];
        const std::string id = nic.id.empty() ? "net" + std::to_string(i) : nic.id;
        if (!ids.insert(id).second) throw Error("--net id=" + id + ": used twice");
        if (!nic.tap_name.empty() && !taps.insert(nic.tap_name).second) {
            throw Error("--net tap=" + nic.tap_name + ": the same TAP is given twice");
        }
        if (nic.uses_fd() && !fds.insert(nic.tap_fd).second) {
            throw Error("--net fd=" + std::to_string(nic.tap_fd) + ": the same fd is given twice");
        }
        if (nic.mac && !macs.insert(net::format_mac(*nic.mac)).second) {
            throw Error("--net mac=" + net::format_mac(*nic.mac) + ": two NICs with one MAC address");
        }
    }
}

}  // namespace

void validate_config(const VmConfig& config, uint64_t host_memory) {
    if (config.kernel_path.empty()) throw Error("--kernel is required");
    if (config.vcpus < kMinVcpus || config.vcpus > x86::kMaxVcpus) {
        throw Error("--cpus " + std::to_string(config.vcpus) + ": must be between " + std::to_string(kMinVcpus) +
                    " and " + std::to_string(x86::kMaxVcpus));
    }
    if (config.memory_bytes < kMinMemory) {
        throw Error("--memory " + format_size(config.memory_bytes) + ": must be at least " + format_size(kMinMemory));
    }
    if (config.memory_bytes % (4 * KiB) != 0) {
        throw Error("--memory " + std::to_string(config.memory_bytes) + " B: must be a multiple of 4 KiB");
    }
    if (config.page_backing == GuestPageBacking::Hugetlb2M && config.memory_bytes % kHugePageSize != 0) {
        throw Error("--memory " + format_size(config.memory_bytes) + ": must be a multiple of 2 MiB with --hugepages");
    }
    validate_disks(config.disks);
    validate_nets(config.nets);
    // Guest RAM is mapped lazily, so the kernel would accept far more than
    // exists; refuse up front instead of letting the guest hit the OOM killer.
    if (host_memory != 0 && config.memory_bytes > host_memory) {
        throw Error("--memory " + format_size(config.memory_bytes) + ": more than this host's memory (" +
                    format_size(host_memory / MiB * MiB) + ")");
    }
}

uint64_t host_memory_bytes() {
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    uint64_t kib = 0;
    std::string unit;
    while (meminfo >> key >> kib >> unit) {
        if (key == "MemTotal:") return kib * KiB;
    }
    return 0;
}

}  // namespace keel
