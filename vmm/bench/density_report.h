#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/boot_summary.h"
#include "bench/compare_setup.h"

// `keel bench density`: K instances of one system started at once.
namespace keel::bench {

struct DensitySetup {
    CompareSetup base;  // kernel, initrd, payload, vCPUs, memory; base.systems holds the one system
    unsigned count = 10;
};

struct DensityResult {
    std::string system;
    unsigned count = 0;
    double all_launched_ms = 0;     // first launch -> last launch
    double all_booted_ms = 0;       // first launch -> the last instance's marker
    double all_exited_ms = 0;       // first launch -> the last instance ended
    std::vector<double> marker_ms;  // each instance: its launch -> its marker
    // Summed over every instance's processes, at the moment all had booted.
    uint64_t overhead_rss_kib = 0;
    uint64_t overhead_pss_kib = 0;
    uint64_t guest_ram_kib = 0;
    // Host MemAvailable before the first launch minus at that moment: what the
    // instances cost the host all told (kernel page tables and KVM state too).
    std::optional<int64_t> mem_available_drop_kib;
};

// Pure: MemAvailable in kB from /proc/meminfo text.
[[nodiscard]] std::optional<uint64_t> mem_available_kib(std::string_view meminfo);

[[nodiscard]] std::string density_report_text(const DensitySetup& setup, const DensityResult& result);
[[nodiscard]] nlohmann::json density_report_json(const DensitySetup& setup, const DensityResult& result);

}  // namespace keel::bench
