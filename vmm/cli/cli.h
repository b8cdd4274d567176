#pragma once

#include <string>
#include <vector>

#include "core/vm_config.h"

namespace keel {

// Bench: `keel bench ...` is carried out by the keel-bench program next to
// keel (main execs it), so that the VMM binary users measure carries none of
// the benchmark code or its libraries.
enum class CliCommand { Exit, Run, Bench };

struct CliOutcome {
    CliCommand command = CliCommand::Exit;
    int exit_code = 0;     // for CliCommand::Exit
    std::string message;   // printed by the caller: help, version or a one-line error
    bool message_is_error = false;
    VmConfig config;       // for CliCommand::Run
    std::vector<std::string> bench_args;  // for CliCommand::Bench: the arguments after "bench"
    std::string log_level = "warn";
};

// Parses keel's command line (argv without the program name). Never throws and
// never prints: help, version and errors come back in the outcome so main
// decides where they go and tests can inspect them.
[[nodiscard]] CliOutcome parse_command_line(const std::vector<std::string>& args);

}  // namespace keel
