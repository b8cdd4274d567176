#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/boot_summary.h"
#include "bench/compare_setup.h"

namespace keel::bench {

// One system's figures over its runs.
struct SystemSummary {
    std::string system;
    size_t runs = 0;
    Spread marker_ms;
    Spread exit_ms;
    Spread shutdown_ms;
    Spread overhead_rss_kib;
    Spread overhead_pss_kib;
    Spread guest_ram_rss_kib;
    Spread exits_at_marker;
    Spread exits_to_vmm;
    Spread exits_at_stop;
    // From the strace run, when there was one.
    bool traced = false;
    size_t syscalls_distinct = 0;          // the whole run
    size_t syscalls_distinct_payload = 0;  // while the payload runs
    uint64_t syscalls_payload = 0;         // calls while the payload runs
};

// Pure: per system, in the order of setup.systems.
[[nodiscard]] std::vector<SystemSummary> summarize_compare(const CompareSetup& setup,
                                                           const std::vector<CompareSample>& samples,
                                                           const std::vector<CompareSyscalls>& syscalls);

// The table printed for people, with what each figure means.
[[nodiscard]] std::string compare_report_text(const CompareSetup& setup, const std::vector<SystemSummary>& summary);

// `keel bench compare --json`: setup, per-system summary, every run, every
// traced syscall with its count.
[[nodiscard]] nlohmann::json compare_report_json(const CompareSetup& setup, const std::vector<SystemSummary>& summary,
                                                 const std::vector<CompareSample>& samples,
                                                 const std::vector<CompareSyscalls>& syscalls);

}  // namespace keel::bench
