// keel's entry point: parse the command line, build the VM, run it, report.
// Every setup error ends here as one line on stderr and a non-zero exit.
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "api/api_session.h"
#include "cli/cli.h"
#include "common/error.h"
#include "core/machine.h"
#include "security/seccomp_filter.h"

namespace {

void setup_logging(const keel::LogSettings& settings) {
    // Logs go to stderr (stdout is the guest's console), or to a config
    // file's logger.log_path, appended to like Firecracker's. PUT /logger
    // sets them up again.
    spdlog::drop("keel");
    std::shared_ptr<spdlog::logger> logger;
    if (settings.path.empty()) {
        logger = spdlog::stderr_color_mt("keel");
    } else {
        try {
            logger = spdlog::basic_logger_mt("keel", settings.path);
        } catch (const spdlog::spdlog_ex& e) {
            throw keel::Error("cannot open log file '" + settings.path + "': " + e.what());
        }
    }
    std::string pattern = "[keel";
    if (settings.show_level) pattern += " %^%l%$";
    logger->set_pattern(pattern + "] %v");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(settings.level));
}

void report(keel::Machine& machine, const keel::VmConfig& config) {
    auto& stats = machine.stats();
    if (config.print_stats) std::cerr << stats.to_text() << std::flush;
    if (!config.stats_json_path.empty()) {
        std::ofstream out(config.stats_json_path);
        out << stats.to_json().dump(2) << "\n";
        if (!out) throw keel::Error("cannot write --stats-json file '" + config.stats_json_path + "'");
    }
}

int finish(keel::Machine& machine, const keel::VmConfig& config, int status) {
    report(machine, config);
    const auto& stats = machine.stats();
    if (stats.stop_reason == "error") {
        std::fprintf(stderr, "error: %s\n", stats.stop_detail.c_str());
    }
    return status;
}

int run(const keel::CliOutcome& cli) {
    setup_logging(cli.log);
    auto machine = keel::Machine::create(cli.config);
    const int status = machine->run();
    return finish(*machine, cli.config, status);
}

int run_with_api(const keel::CliOutcome& cli) {
    setup_logging(cli.log);
    keel::api::VmControllerOptions options{.command_line = cli.config};
    options.configure_logger = [log = cli.log](const keel::api::LoggerConfig& logger) mutable {
        keel::apply_logger_config(logger, false, log);
        setup_logging(log);
    };
    keel::api::ApiSession session(cli.api_socket, cli.resources, std::move(options));
    if (cli.vm_given) {
        session.start_now();
    } else if (!session.wait_for_instance_start()) {
        return session.exit_status_after_signal();
    }
    const int status = session.run();
    return finish(session.machine(), session.vm_config(), status);
}

// `keel bench ...` is keel-bench's: it sits next to keel (see bench_main.cc).
int exec_bench(const std::vector<std::string>& args) {
    std::error_code error;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
    if (error) throw keel::Error("cannot find keel's own binary (/proc/self/exe): " + error.message());
    const std::string bench = (self.parent_path() / "keel-bench").string();
    std::vector<char*> argv{const_cast<char*>(bench.c_str())};
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::execv(bench.c_str(), argv.data());
    throw keel::Error("keel bench needs keel-bench next to keel, and '" + bench + "' cannot be started (" +
                      std::strerror(errno) + "); scripts/build builds both");
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    const auto cli = keel::parse_command_line(args);
    if (cli.command == keel::CliCommand::Exit) {
        std::fputs(cli.message.c_str(), cli.message_is_error ? stderr : stdout);
        if (cli.message_is_error) std::fputc('\n', stderr);
        return cli.exit_code;
    }
    try {
        if (cli.command == keel::CliCommand::Bench) return exec_bench(cli.bench_args);
        if (cli.command == keel::CliCommand::Jail) return keel::jail::run_jail(cli.jail);
        // Only an enforcing filter traps; log and off never raise SIGSYS.
        if (cli.config.seccomp == keel::security::SeccompMode::Enforce) keel::security::install_violation_reporter();
        // The API's session also writes a config file's metrics.
        const bool session = !cli.api_socket.empty() || cli.resources.metrics();
        return session ? run_with_api(cli) : run(cli);
    } catch (const keel::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: internal: %s\n", e.what());
    }
    return 1;
}
