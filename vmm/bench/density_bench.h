#pragma once

#include "bench/density_report.h"

namespace keel::bench {

// `keel bench density`: starts `count` instances of one system at once (keel
// by default), each booting the payload, waits until every one has printed
// its marker, measures the host memory they hold together, then lets them all
// end. Prints the report on stdout (JSON to base.json_path). Throws
// keel::Error naming the instance and its log when one fails; none is left
// running.
void run_density_bench(DensitySetup setup);

}  // namespace keel::bench
