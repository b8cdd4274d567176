#pragma once

#include "bench/compare_setup.h"

namespace keel::bench {

// `keel bench compare`: runs every system of `setup` `runs` times,
// interleaved (A B C A B C ...), each run a fresh process started as a user
// starts it; then, unless told not to, one untimed run of each under
// `strace -f`. Prints the report on stdout (and JSON to setup.json_path),
// progress on stderr. Throws keel::Error naming the system, the run and its
// log when a run fails or a system cannot be started at all.
void run_compare_bench(CompareSetup setup);

}  // namespace keel::bench
