#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "bench/boot_sample.h"

namespace keel::bench {

// min / median / max of one figure over the runs that have it.
struct Spread {
    double min = 0;
    double median = 0;
    double max = 0;
    size_t runs = 0;  // how many runs had the figure
};

[[nodiscard]] Spread spread_of(std::vector<double> values);
// As the reports print a figure: "median [min-max]" with `decimals` digits,
// "median" alone when all runs agree, "-" when no run had it.
[[nodiscard]] std::string spread_cell(const Spread& s, int decimals);
// {"min", "median", "max", "runs"}; null when no run had the figure.
[[nodiscard]] nlohmann::json spread_json(const Spread& s);

// What was booted, for the report's header.
struct BootBenchSetup {
    std::string kernel;
    std::string initrd;
    unsigned vcpus = 1;
    uint64_t memory_mib = 0;
    std::string transport;
    // Where keel ran (host_kind()): on bare metal, nested under another
    // hypervisor, or emulated (QEMU TCG: scripts/kvm-sandbox), where times
    // are meaningless and only counts and ratios count.
    std::string host = "bare metal";
    bool emulated = false;
};

struct BootSummary {
    size_t runs = 0;
    // Every event any run had, ordered by median time.
    std::vector<std::pair<std::string, Spread>> events;
    // "exits to keel", "exits (all, KVM)", then "to keel: <reason>".
    std::vector<std::pair<std::string, Spread>> exits;
    // Memory kinds in a fixed order ("overhead" first), RSS and PSS, KiB.
    std::vector<std::pair<std::string, Spread>> rss_kib;
    std::vector<std::pair<std::string, Spread>> pss_kib;
};

[[nodiscard]] BootSummary summarize(const std::vector<BootSample>& samples);

// `keel bench boot --json`: setup, summary and every run's raw figures.
[[nodiscard]] nlohmann::json boot_report_json(const BootBenchSetup& setup, const BootSummary& summary,
                                              const std::vector<BootSample>& samples);
// The table printed for people.
[[nodiscard]] std::string boot_report_text(const BootBenchSetup& setup, const BootSummary& summary);

}  // namespace keel::bench
