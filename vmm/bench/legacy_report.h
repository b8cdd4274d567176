#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/boot_summary.h"
#include "bench/legacy_setup.h"

namespace keel::bench {

// One system's figures over its runs.
struct LegacySystemSummary {
    std::string system;
    size_t runs = 0;
    Spread http_ms;
    Spread exit_ms;
    Spread stop_ms;
    Spread overhead_rss_kib;
    Spread overhead_pss_kib;
    Spread guest_ram_rss_kib;  // keel only
    Spread processes;
    Spread http_attempts;
};

// Pure: keel first, then crun (a system without runs is left out).
[[nodiscard]] std::vector<LegacySystemSummary> summarize_legacy(const std::vector<LegacySample>& samples);

// The table printed for people, with what each figure means.
[[nodiscard]] std::string legacy_report_text(const LegacySetup& setup, const std::vector<LegacySystemSummary>& summary);

// `keel bench legacy --json`: setup, per-system summary, every run.
[[nodiscard]] nlohmann::json legacy_report_json(const LegacySetup& setup,
                                                const std::vector<LegacySystemSummary>& summary,
                                                const std::vector<LegacySample>& samples);

}  // namespace keel::bench
