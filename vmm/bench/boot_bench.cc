#include "bench/boot_bench.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "bench/boot_svg.h"
#include "bench/host_kind.h"
#include "common/error.h"
#include "common/fd.h"
#include "core/boot_clock.h"

extern char** environ;

namespace keel::bench {
namespace {

namespace fs = std::filesystem;

std::string self_executable() {
    std::error_code error;
    const auto path = fs::read_symlink("/proc/self/exe", error);
    if (error) throw Error("cannot find keel's own binary (/proc/self/exe): " + error.message());
    return path.string();
}

// A private directory for the runs' statistics and console logs.
std::string make_work_dir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/keel-bench-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw_errno("cannot create a directory for the runs (" + pattern + ")");
    return pattern;
}

// The line of a failed run's log that says most: its last "error:" line,
// else its last non-empty line.
std::string telling_line(const std::string& log_path) {
    std::ifstream in(log_path);
    std::string line;
    std::string last;
    std::string last_error;
    while (std::getline(in, line)) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (line.empty()) continue;
        last = line;
        if (line.starts_with("error:")) last_error = line;
    }
    std::string pick = last_error.empty() ? last : last_error.substr(std::strlen("error: "));
    if (pick.empty()) return "it printed nothing";
    return pick.size() > 300 ? pick.substr(0, 300) + "..." : pick;
}

struct Spawned {
    pid_t pid = -1;
    uint64_t launch_ns = 0;
};

Spawned spawn_run(const std::string& exe, const std::vector<std::string>& args, const std::string& log_path) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    Spawned spawned;
    spawned.launch_ns = monotonic_ns();
    const int error = posix_spawn(&spawned.pid, exe.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) throw Error("cannot start '" + exe + "': " + std::strerror(error));
    return spawned;
}

// Waits for `pid` for at most `timeout_seconds`; returns its wait status
// and sets `exit_ns` to when it ended. Kills it on timeout (nullopt).
std::optional<int> wait_for(pid_t pid, unsigned timeout_seconds, uint64_t& exit_ns) {
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd.valid()) throw_errno("pidfd_open");
    const uint64_t deadline = monotonic_ns() + uint64_t{timeout_seconds} * 1'000'000'000;
    for (;;) {
        const uint64_t now = monotonic_ns();
        if (now >= deadline) break;
        pollfd p{pidfd.get(), POLLIN, 0};
        const int wait_ms = static_cast<int>(std::min<uint64_t>((deadline - now) / 1'000'000 + 1, INT_MAX));
        const int ready = ::poll(&p, 1, wait_ms);
        if (ready < 0 && errno != EINTR) throw_errno("poll on a run's pidfd");
        if (ready > 0) {
            exit_ns = monotonic_ns();
            int status = 0;
            if (::waitpid(pid, &status, 0) != pid) throw_errno("waitpid");
            return status;
        }
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    (void)::waitpid(pid, &status, 0);
    return std::nullopt;
}

std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
    return "wait status " + std::to_string(status);
}

void write_file(const std::string& path, const std::string& content, const char* what) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    out.close();
    if (!out) throw Error(std::string("cannot write the ") + what + " to '" + path + "'");
}

}  // namespace

void run_boot_bench(BootBenchOptions options) {
    const HostKind host = host_kind();
    options.setup.host = host.description;
    options.setup.emulated = host.emulated;
    const std::string exe = self_executable();
    const std::string dir = make_work_dir();

    std::vector<BootSample> samples;
    for (unsigned run = 1; run <= options.runs; ++run) {
        const std::string stats_path = dir + "/run-" + std::to_string(run) + ".json";
        const std::string log_path = dir + "/run-" + std::to_string(run) + ".log";
        std::vector<std::string> args{"keel", "run"};
        args.insert(args.end(), options.run_args.begin(), options.run_args.end());
        args.insert(args.end(), {"--stats-json", stats_path});
        const Spawned spawned = spawn_run(exe, args, log_path);
        uint64_t exit_ns = 0;
        const auto status = wait_for(spawned.pid, options.timeout_seconds, exit_ns);
        const std::string which = "run " + std::to_string(run) + " of " + std::to_string(options.runs);
        if (!status) {
            throw Error(which + " did not end within " + std::to_string(options.timeout_seconds) +
                        " s and was killed (its console: " + log_path + ")");
        }
        if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
            throw Error(which + " failed, " + describe_status(*status) + ": " + telling_line(log_path) +
                        " (log: " + log_path + ")");
        }
        nlohmann::json stats;
        {
            std::ifstream in(stats_path);
            stats = nlohmann::json::parse(in, nullptr, false);
        }
        if (stats.is_discarded()) throw Error(which + " left no readable statistics in " + stats_path);
        samples.push_back(sample_from_stats(stats, spawned.launch_ns, exit_ns));
        std::fprintf(stderr, "keel bench boot: %s: %.1f ms from launch to exit\n", which.c_str(),
                     static_cast<double>(exit_ns - spawned.launch_ns) / 1e6);
    }

    const BootSummary summary = summarize(samples);
    std::cout << boot_report_text(options.setup, summary) << std::flush;
    if (!options.json_path.empty()) {
        write_file(options.json_path, boot_report_json(options.setup, summary, samples).dump(2) + "\n", "JSON report");
    }
    if (!options.svg_path.empty()) write_file(options.svg_path, boot_report_svg(options.setup, summary), "SVG picture");
    std::error_code ignored;
    fs::remove_all(dir, ignored);
}

}  // namespace keel::bench
