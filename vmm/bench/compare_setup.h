#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bench/strace_summary.h"

// `keel bench compare`: the same kernel, initrd payload, vCPUs and memory
// under keel, QEMU's microvm and OCI container runtimes, interleaved.
namespace keel::bench {

// The systems compare knows, by the name the user gives them.
inline constexpr const char* kKeel = "keel";
inline constexpr const char* kQemuMicrovm = "qemu-microvm";
inline constexpr const char* kCrun = "crun";
inline constexpr const char* kRunc = "runc";
[[nodiscard]] bool is_vm_system(const std::string& system);
[[nodiscard]] bool is_known_system(const std::string& system);

struct CompareSetup {
    std::string kernel;
    std::string initrd;
    unsigned vcpus = 1;
    uint64_t memory_bytes = uint64_t{128} << 20;
    unsigned runs = 10;
    unsigned timeout_seconds = 300;  // per run
    std::vector<std::string> systems;
    // The payload: a program inside the initrd. VMs boot it as the initrd's
    // init (rdinit=), containers run it as their process. It prints `marker`,
    // reads one line from its standard input (the bench samples the running
    // system, then sends the line), and ends: a VM's init powers it off.
    std::string payload = "/bench/payload.sh";
    std::string marker = "KEEL-BENCH payload-ready";
    std::string cmdline;  // the VMs' kernel command line; empty: default_vm_cmdline()
    bool strace = true;   // one extra, untimed run per system under `strace -f`
    std::string json_path;
    std::string keel_binary;  // filled in by the bench
    std::string host = "bare metal";
    bool emulated = false;
};

[[nodiscard]] std::string default_vm_cmdline(const std::string& payload);

// Files a run needs, named by the runner.
struct RunPaths {
    std::string keel_stats_json;  // keel's --stats-json
    std::string bundle;           // the OCI bundle (containers)
    std::string container_id;
};

// Pure: the command that starts one run of `system`.
[[nodiscard]] std::vector<std::string> system_command(const std::string& system, const CompareSetup& setup,
                                                      const RunPaths& paths);

// Pure: which of a run's syscalls count as "while the payload runs".
[[nodiscard]] StraceWindow payload_window(const std::string& system, const CompareSetup& setup);

// One run of one system.
struct CompareSample {
    std::string system;
    unsigned run = 0;
    double marker_ms = 0;    // launch -> the payload's marker on the console
    double exit_ms = 0;      // launch -> the process ended
    double shutdown_ms = 0;  // the go-ahead line sent -> the process ended
    // Host memory of the system's processes at the marker, KiB.
    uint64_t overhead_rss_kib = 0;
    uint64_t overhead_pss_kib = 0;
    uint64_t guest_ram_rss_kib = 0;  // VMs: guest RAM the guest touched
    unsigned processes = 0;
    std::optional<uint64_t> exits_at_marker;  // KVM debugfs (VMs, when mounted)
    std::optional<uint64_t> exits_to_vmm;     // keel: exits that reached keel, at stop
    std::optional<uint64_t> exits_at_stop;    // keel: KVM's count at stop (KVM_GET_STATS_FD)
    std::string seccomp_mode;                 // keel: its filters' mode, as its statistics say
};

// One untimed run under strace.
struct CompareSyscalls {
    std::string system;
    StraceSummary summary;
};

}  // namespace keel::bench
