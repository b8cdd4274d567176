#pragma once

#include <string>
#include <vector>

#include "bench/boot_summary.h"

namespace keel::bench {

struct BootBenchOptions {
    unsigned runs = 10;
    unsigned timeout_seconds = 300;  // per run
    std::string json_path;
    std::string svg_path;
    // Handed to `keel run` unchanged (the bench adds --stats-json).
    std::vector<std::string> run_args;
    BootBenchSetup setup;  // for the report; `host` and `emulated` are filled in here
};

// `keel bench boot`: boots the guest `runs` times, each in a fresh keel
// process started the way a user starts it (the same binary, `run` and the
// same options; stdin /dev/null, the console into a log file), and reports
// the spread of every boot phase, VM exits and VMM memory on stdout (and as
// JSON / SVG). Progress goes to stderr. Throws keel::Error when a run fails
// (non-zero exit, timeout, no statistics), naming the run and its log.
void run_boot_bench(BootBenchOptions options);

}  // namespace keel::bench
