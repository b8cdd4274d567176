#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace keel::bench {

// One boot as `keel bench boot` saw it. Times are milliseconds since the
// bench launched the keel process (CLOCK_MONOTONIC, the clock keel's own
// phases use), so process creation and dynamic linking count too.
struct BootSample {
    // "process start", keel's phases ("KVM ready", ...), guest boot-timer
    // marks ("guest mmio 123", "guest port80 0x61"), and "process exit"; in
    // time order.
    std::vector<std::pair<std::string, double>> events;
    std::string stop_reason;
    uint64_t exits_to_keel = 0;
    std::map<std::string, uint64_t> exits_by_reason;  // exits that reached keel ("io", "mmio", "hlt", ...)
    std::optional<uint64_t> kvm_exits;                // every exit, counted by KVM (absent without KVM_GET_STATS_FD)
    // VMM memory when the guest stopped, KiB: "overhead" (all but guest RAM),
    // its kinds ("binary", "libraries", "heap", "stacks", "kvm", "other"),
    // and "guest_ram_touched".
    std::map<std::string, uint64_t> rss_kib;
    std::map<std::string, uint64_t> pss_kib;
};

// The name of a guest boot-timer mark in BootSample::events.
[[nodiscard]] std::string guest_mark_name(const std::string& source, uint64_t code);

// Builds a sample from keel's --stats-json document of one run. `launch_ns`
// is when the bench started the process, `exit_ns` when it reaped it. Throws
// keel::Error naming what is missing when `stats` is not keel's format.
[[nodiscard]] BootSample sample_from_stats(const nlohmann::json& stats, uint64_t launch_ns, uint64_t exit_ns);

}  // namespace keel::bench
