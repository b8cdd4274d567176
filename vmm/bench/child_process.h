#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/fd.h"

// Starting, feeding and reaping the processes a benchmark measures. Each one
// is started with posix_spawn, the way a shell starts it, and timed on
// CLOCK_MONOTONIC (the clock keel's own phases use).
namespace keel::bench {

inline constexpr uint64_t kNsPerSecond = 1'000'000'000;

// The program `name` in the directory of the running one (keel beside
// keel-bench, and the other way round). Throws keel::Error saying what is
// missing when it is not there.
[[nodiscard]] std::string sibling_program(const std::string& name);

// A private directory for a bench's logs and files, under $TMPDIR or /tmp.
[[nodiscard]] std::string make_work_dir(const std::string& prefix);

struct ChildStdio {
    bool stdin_pipe = false;   // else /dev/null
    bool stdout_pipe = false;  // else `log_path`; stderr always goes with stdout
    std::string log_path;
};

struct Child {
    pid_t pid = -1;
    uint64_t launch_ns = 0;  // just before posix_spawn
    UniqueFd stdin_fd;       // the write end, when ChildStdio::stdin_pipe
    UniqueFd stdout_fd;      // the read end (non-blocking), when ChildStdio::stdout_pipe
};

// Starts `args` (args[0] is the program; a bare name is looked up in PATH).
// Throws keel::Error naming the program when it cannot be started.
[[nodiscard]] Child spawn_child(const std::vector<std::string>& args, const ChildStdio& stdio);

// Waits at most `timeout_ns` for `pid` to end; returns its wait status and
// sets `exit_ns`. On timeout it kills the process (SIGKILL) and returns nullopt.
[[nodiscard]] std::optional<int> wait_for_child(pid_t pid, uint64_t timeout_ns, uint64_t& exit_ns);

// Runs a clean-up command (`crun delete --force`, `ip netns del`) to its end,
// output discarded, killed after 30 s. Used where a bench is already failing
// or done: whether it could be started or worked changes nothing there.
void run_cleanup(const std::vector<std::string>& args) noexcept;

// How long poll() may wait, in ms, to return by `deadline_ns` (CLOCK_MONOTONIC)
// when it is `now_ns` (< deadline_ns): rounded up, so a wait never ends early.
[[nodiscard]] int poll_wait_ms(uint64_t now_ns, uint64_t deadline_ns);

// "exit status 1", "killed by signal Killed".
[[nodiscard]] std::string describe_wait_status(int status);

// The line of a failed run's log that says most: its last "error:" line,
// else its last non-empty line.
[[nodiscard]] std::string telling_line(const std::string& log_path);

// Writes `content` to `path`; throws keel::Error naming `what` when it cannot.
void write_text_file(const std::string& path, const std::string& content, const char* what);

}  // namespace keel::bench
