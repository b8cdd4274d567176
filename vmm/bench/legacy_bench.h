#pragma once

#include "bench/legacy_setup.h"

namespace keel::bench {

// `keel bench legacy`: `setup.runs` runs each of the legacy image under keel
// and its lighttpd as a crun container, interleaved (keel crun keel crun ...),
// every run from the pristine image. Needs root (network namespaces, crun).
// Prints the report on stdout (and JSON to setup.json_path), progress on
// stderr. Throws keel::Error saying what to do when a tool or the image is
// missing, and naming the system, the run and its log when a run fails.
void run_legacy_bench(LegacySetup setup);

}  // namespace keel::bench
