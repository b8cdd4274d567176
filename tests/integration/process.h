#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace keel::test {

struct ProcessResult {
    int exit_code = -1;     // -1 when killed by a signal or the deadline
    int term_signal = 0;
    bool timed_out = false;
    bool killed = false;    // by ProcessOptions::kill_when
    std::string out;
    std::string err;
};

// Runs argv[0] (a path) with argv, feeding `input` to its stdin (then closing
// it, unless keep_stdin_open), capturing stdout and stderr, killing it after
// `timeout`. `on_output` may return text to write to stdin when the output so
// far calls for it (an interactive exchange); it is called after each read.
struct ProcessOptions {
    // A guest boot takes 5-40 s in the emulated sandbox (ASan build included):
    // one that needs minutes is hung, and the harness reports its threads.
    std::chrono::seconds timeout{300};
    std::string input;
    bool keep_stdin_open = false;
    std::vector<std::pair<std::string, std::string>> script;  // (wait for text, then send)
    // Checked after each read of stdout: when it returns true the process is
    // SIGKILLed on the spot (crash-safety tests pull the plug this way).
    std::function<bool(const std::string& out)> kill_when;
    // Called with the output so far after each read of stdout, and at least
    // once a second: tests start host-side work when a guest marker appears.
    // Must return at once (run anything slow on a thread of its own).
    std::function<void(const std::string& out)> watch;
    // run_process only, with keep_stdin_open: called like `watch`; what it
    // returns is written to stdin (a reply that depends on host-side
    // timing, which `script` cannot express).
    std::function<std::string(const std::string& out)> reply;
    // run_process only: called with the child's pid once it is started (a
    // test that signals keel itself, e.g. SIGTERM from its client thread).
    std::function<void(pid_t pid)> started;
};

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

// The same on a pseudo-terminal, as a user at a terminal would run it: stdin,
// stdout and stderr are the pty (so `out` holds both), and the script's
// replies are typed into it.
ProcessResult run_in_pty(const std::vector<std::string>& argv, const ProcessOptions& options = {});

// Lines of `text` starting with "KEEL-TEST ", as key -> value ("boot-ok" -> "").
std::vector<std::pair<std::string, std::string>> guest_markers(const std::string& text);
std::optional<std::string> marker(const std::string& text, const std::string& key);

std::string env_or(const char* name, const std::string& fallback);

}  // namespace keel::test
