#pragma once

#include <string>
#include <vector>

#include "bench/boot_bench.h"
#include "core/vm_config.h"

namespace keel {

enum class CliCommand { Exit, Run, BenchBoot };

struct CliOutcome {
    CliCommand command = CliCommand::Exit;
    int exit_code = 0;     // for CliCommand::Exit
    std::string message;   // printed by the caller: help, version or a one-line error
    bool message_is_error = false;
    VmConfig config;       // for CliCommand::Run (and the run options of BenchBoot)
    bench::BootBenchOptions bench_boot;  // for CliCommand::BenchBoot
    std::string log_level = "warn";
};

// Parses keel's command line (argv without the program name). Never throws and
// never prints: help, version and errors come back in the outcome so main
// decides where they go and tests can inspect them.
[[nodiscard]] CliOutcome parse_command_line(const std::vector<std::string>& args);

}  // namespace keel
