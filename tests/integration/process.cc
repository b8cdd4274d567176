#include "process.h"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace keel::test {

namespace {

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
    std::vector<char*> out;
    for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
    out.push_back(nullptr);
    return out;
}

std::string describe_stuck_process(pid_t pid);

// Waits for the child, but not for ever: a process stuck in the kernel (a
// wedged KVM_RUN) ignores SIGKILL until it leaves it, and one such test must
// not hang the whole batch.
void reap(pid_t pid, ProcessResult& result) {
    int status = 0;
    for (int waited_ms = 0; waited_ms < 30'000; waited_ms += 50) {
        const pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid) {
            if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
            if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
            return;
        }
        if (waited_ms == 10'000) kill(pid, SIGKILL);
        usleep(50'000);
    }
    result.timed_out = true;
    result.err += "\n[test harness] the process did not exit within 30 s of its end and was abandoned";
    // Where the kernel holds it, which is the one clue to an emulated-host wedge.
    result.err += describe_stuck_process(pid);
}

std::string read_small_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// What a process that ran out of time was doing, for the failure report: each
// thread's name, state and kernel wait channel (and kernel stack where root
// may read it), then its user-space stacks from gdb when gdb is installed.
// Tells a keel deadlock (threads in futex_wait) from a vCPU stuck in KVM_RUN.
std::string describe_stuck_process(pid_t pid) {
    std::string report = "\n[test harness] the process ran out of time; its threads:\n";
    const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
    std::error_code error;
    for (const auto& task : std::filesystem::directory_iterator(task_dir, error)) {
        const std::string dir = task.path().string();
        std::string comm = read_small_file(dir + "/comm");
        if (!comm.empty() && comm.back() == '\n') comm.pop_back();
        const std::string stat = read_small_file(dir + "/stat");
        const auto state_at = stat.rfind(')');
        const char state = state_at != std::string::npos && state_at + 2 < stat.size() ? stat[state_at + 2] : '?';
        report += "  " + task.path().filename().string() + " " + comm + " state " + state + " wchan " +
                  read_small_file(dir + "/wchan") + "\n";
        const std::string stack = read_small_file(dir + "/stack");
        if (!stack.empty()) report += stack;
    }
    if (access("/usr/bin/gdb", X_OK) == 0) {
        const std::string command = "timeout 60 /usr/bin/gdb -p " + std::to_string(pid) +
                                    " -batch -nx -ex 'set pagination off' -ex 'thread apply all bt' 2>&1 | "
                                    "grep -E '^(Thread|#)' | head -n 200";
        if (FILE* gdb = popen(command.c_str(), "r")) {
            char line[512];
            while (fgets(line, sizeof line, gdb) != nullptr) report += line;
            pclose(gdb);
        }
    }
    return report;
}

// Long enough for keel to stop its vCPUs and write its statistics even in the
// emulated sandbox; a keel stuck inside the kernel gets SIGKILL after it.
constexpr auto kTerminateGrace = std::chrono::seconds(15);

// Waits up to `timeout_ms` for output on the child's stdout and stderr and
// appends what is there; a pipe at EOF (or broken) is marked closed.
void read_ready_output(int out_fd, int err_fd, bool& out_open, bool& err_open, ProcessResult& result, int timeout_ms) {
    pollfd fds[2] = {{out_open ? out_fd : -1, POLLIN, 0}, {err_open ? err_fd : -1, POLLIN, 0}};
    poll(fds, 2, timeout_ms);
    char buf[65536];
    for (int i = 0; i < 2; ++i) {
        if (fds[i].revents == 0) continue;
        const ssize_t n = read(fds[i].fd, buf, sizeof buf);
        if (n > 0) {
            (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            (i == 0 ? out_open : err_open) = false;
        }
    }
}

// Keeps reading the child's output after SIGTERM until it exits (left for the
// caller to reap) or `grace` passes.
void drain_until_exit(pid_t pid, int out_fd, int err_fd, bool& out_open, bool& err_open, ProcessResult& result,
                      std::chrono::seconds grace) {
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while ((out_open || err_open) && std::chrono::steady_clock::now() < deadline) {
        read_ready_output(out_fd, err_fd, out_open, err_open, result, 200);
        siginfo_t exited{};
        if (waitid(P_PID, static_cast<id_t>(pid), &exited, WEXITED | WNOHANG | WNOWAIT) == 0 && exited.si_pid == pid) {
            return;  // reaped by the caller
        }
    }
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
    int in_pipe[2], out_pipe[2], err_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe2 failed");
    }
    auto args = c_argv(argv);
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        dup2(in_pipe[0], 0);
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        execv(args[0], args.data());
        dprintf(2, "exec %s: %s\n", args[0], strerror(errno));
        _exit(127);
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (options.started) options.started(pid);
    signal(SIGPIPE, SIG_IGN);
    set_nonblocking(out_pipe[0]);
    set_nonblocking(err_pipe[0]);

    ProcessResult result;
    int stdin_fd = in_pipe[1];
    const auto send = [&](const std::string& text) {
        if (stdin_fd >= 0 && !text.empty()) (void)!write(stdin_fd, text.data(), text.size());
    };
    send(options.input);
    size_t script_step = 0;
    if (!options.keep_stdin_open && options.script.empty()) {
        close(stdin_fd);
        stdin_fd = -1;
    }

    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    bool out_open = true, err_open = true;
    while (out_open || err_open) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            result.timed_out = true;
            result.err += describe_stuck_process(pid);
            // SIGTERM first: keel then stops its vCPUs and writes --stats-json,
            // whose per-vCPU rip and KVM exit counts say where a guest was stuck.
            kill(pid, SIGTERM);
            drain_until_exit(pid, out_pipe[0], err_pipe[0], out_open, err_open, result, kTerminateGrace);
            kill(pid, SIGKILL);
            break;
        }
        read_ready_output(out_pipe[0], err_pipe[0], out_open, err_open, result,
                          static_cast<int>(std::min<long>(left.count(), 1000)));
        while (script_step < options.script.size() &&
               result.out.find(options.script[script_step].first) != std::string::npos) {
            send(options.script[script_step].second);
            ++script_step;
        }
        if (options.kill_when && !result.killed && options.kill_when(result.out)) {
            kill(pid, SIGKILL);
            result.killed = true;
        }
        if (options.watch) options.watch(result.out);
        if (options.reply) send(options.reply(result.out));
    }
    if (stdin_fd >= 0) close(stdin_fd);
    close(out_pipe[0]);
    close(err_pipe[0]);
    reap(pid, result);
    return result;
}

ProcessResult run_in_pty(const std::vector<std::string>& argv, const ProcessOptions& options) {
    auto args = c_argv(argv);
    int master = -1;
    const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
    if (pid < 0) throw std::runtime_error("forkpty failed");
    if (pid == 0) {
        execv(args[0], args.data());
        _exit(127);
    }
    set_nonblocking(master);
    ProcessResult result;
    const auto send = [&](const std::string& text) {
        if (!text.empty()) (void)!write(master, text.data(), text.size());
    };
    send(options.input);
    size_t script_step = 0;
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            result.timed_out = true;
            result.err += describe_stuck_process(pid);
            kill(pid, SIGKILL);
            break;
        }
        pollfd fd{master, POLLIN, 0};
        poll(&fd, 1, static_cast<int>(std::min<long>(left.count(), 1000)));
        char buf[65536];
        const ssize_t n = read(master, buf, sizeof buf);
        if (n > 0) {
            result.out.append(buf, static_cast<size_t>(n));
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            break;  // EIO: the child closed its side of the pty
        }
        while (script_step < options.script.size() &&
               result.out.find(options.script[script_step].first) != std::string::npos) {
            send(options.script[script_step].second);
            ++script_step;
        }
    }
    close(master);
    reap(pid, result);
    return result;
}

std::vector<std::pair<std::string, std::string>> guest_markers(const std::string& text) {
    std::vector<std::pair<std::string, std::string>> markers;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const auto pos = line.find("KEEL-TEST ");
        if (pos == std::string::npos) continue;
        const std::string body = line.substr(pos + 10);
        const auto eq = body.find('=');
        markers.emplace_back(body.substr(0, eq), eq == std::string::npos ? "" : body.substr(eq + 1));
    }
    return markers;
}

std::optional<std::string> marker(const std::string& text, const std::string& key) {
    for (const auto& [k, v] : guest_markers(text)) {
        if (k == key) return v;
    }
    return std::nullopt;
}

std::string env_or(const char* name, const std::string& fallback) {
    const char* value = std::getenv(name);
    return value != nullptr && *value != '\0' ? value : fallback;
}

}  // namespace keel::test
