#pragma once

#include <string>

#include "bench/boot_summary.h"

namespace keel::bench {

// `keel bench boot --svg`: a self-contained SVG with two pictures, the boot
// timeline (each event's median time from launch as a bar, its min..max as a
// whisker) and the VMM's memory at guest stop (median RSS by kind as one
// stacked bar, guest RAM touched beside it). Text is escaped; no scripts,
// no external references.
[[nodiscard]] std::string boot_report_svg(const BootBenchSetup& setup, const BootSummary& summary);

}  // namespace keel::bench
