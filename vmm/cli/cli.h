#pragma once

#include <string>
#include <vector>

#include "api/vm_resources.h"
#include "core/vm_config.h"
#include "jail/jail.h"

namespace keel {

// Where keel's own log goes and how much of it: --log-level, or a config
// file's `logger` section (Firecracker's log_path, level, show_level;
// show_log_origin is accepted and adds nothing: keel's messages begin with the
// device or part of keel they come from, and it has no file:line to add).
struct LogSettings {
    std::string level = "warn";  // spdlog's names: off, error, warn, info, debug, trace
    std::string path;            // empty: stderr
    bool show_level = true;
};

// Bench: `keel bench ...` is carried out by the keel-bench program next to
// keel (main execs it), so that the VMM binary users measure carries none of
// the benchmark code or its libraries.
enum class CliCommand { Exit, Run, Bench, Jail };

struct CliOutcome {
    CliCommand command = CliCommand::Exit;
    int exit_code = 0;     // for CliCommand::Exit
    std::string message;   // printed by the caller: help, version or a one-line error
    bool message_is_error = false;
    VmConfig config;       // for CliCommand::Run
    // --api-sock: serve Firecracker's API there. The VM then is `resources`:
    // complete (and started at once) when vm_given, else described by the
    // API's requests until InstanceStart.
    std::string api_socket;
    bool vm_given = false;
    api::VmResources resources;
    std::vector<std::string> bench_args;  // for CliCommand::Bench: the arguments after "bench"
    jail::JailRequest jail;               // for CliCommand::Jail
    LogSettings log;
};

// A logger section or PUT /logger applied to `log` (Firecracker's level
// names, "Warning" included); `keep_level` leaves an explicit --log-level.
void apply_logger_config(const api::LoggerConfig& logger, bool keep_level, LogSettings& log);

// Parses keel's command line (argv without the program name). Never throws and
// never prints: help, version and errors come back in the outcome so main
// decides where they go and tests can inspect them.
[[nodiscard]] CliOutcome parse_command_line(const std::vector<std::string>& args);

}  // namespace keel
