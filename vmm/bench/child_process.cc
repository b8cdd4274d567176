#include "bench/child_process.h"

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
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "core/boot_clock.h"

extern char** environ;

namespace keel::bench {

namespace fs = std::filesystem;

std::string sibling_program(const std::string& name) {
    std::error_code error;
    const auto self = fs::read_symlink("/proc/self/exe", error);
    if (error) throw Error("cannot find the running program (/proc/self/exe): " + error.message());
    const fs::path sibling = self.parent_path() / name;
    if (::access(sibling.c_str(), X_OK) != 0) {
        throw Error("'" + name + "' is not next to '" + self.string() + "' (" + std::strerror(errno) +
                    "); scripts/build builds keel and keel-bench together");
    }
    return sibling.string();
}

std::string make_work_dir(const std::string& prefix) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/" + prefix + "-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw_errno("cannot create a directory for the runs (" + pattern + ")");
    return pattern;
}

namespace {

std::pair<UniqueFd, UniqueFd> make_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
    return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

}  // namespace

Child spawn_child(const std::vector<std::string>& args, const ChildStdio& stdio) {
    if (args.empty()) throw Error("spawn_child: no program");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    Child child;
    UniqueFd stdin_read;
    UniqueFd stdout_write;
    if (stdio.stdin_pipe) {
        auto [read_end, write_end] = make_pipe();
        stdin_read = std::move(read_end);
        child.stdin_fd = std::move(write_end);
        posix_spawn_file_actions_adddup2(&actions, stdin_read.get(), STDIN_FILENO);
    } else {
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    }
    if (stdio.stdout_pipe) {
        auto [read_end, write_end] = make_pipe();
        child.stdout_fd = std::move(read_end);
        stdout_write = std::move(write_end);
        if (::fcntl(child.stdout_fd.get(), F_SETFL, O_NONBLOCK) != 0) throw_errno("fcntl O_NONBLOCK");
        posix_spawn_file_actions_adddup2(&actions, stdout_write.get(), STDOUT_FILENO);
    } else {
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, stdio.log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0644);
    }
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    // A bench that feeds a child through a pipe ignores SIGPIPE; the child
    // must not inherit that.
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF);
    child.launch_ns = monotonic_ns();
    const int error = posix_spawnp(&child.pid, args[0].c_str(), &actions, &attributes, argv.data(), environ);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) throw Error("cannot start '" + args[0] + "': " + std::strerror(error));
    return child;
}

std::optional<int> wait_for_child(pid_t pid, uint64_t timeout_ns, uint64_t& exit_ns) {
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd.valid()) throw_errno("pidfd_open");
    const uint64_t deadline = monotonic_ns() + timeout_ns;
    for (;;) {
        const uint64_t now = monotonic_ns();
        if (now >= deadline) break;
        pollfd p{pidfd.get(), POLLIN, 0};
        const int ready = ::poll(&p, 1, poll_wait_ms(now, deadline));
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

void run_cleanup(const std::vector<std::string>& args) noexcept {
    try {
        const Child child = spawn_child(args, ChildStdio{.log_path = "/dev/null"});
        uint64_t ignored = 0;
        (void)wait_for_child(child.pid, 30 * kNsPerSecond, ignored);
    } catch (const std::exception&) {
    }
}

int poll_wait_ms(uint64_t now_ns, uint64_t deadline_ns) {
    return static_cast<int>(std::min<uint64_t>((deadline_ns - now_ns) / 1'000'000 + 1, INT_MAX));
}

std::string describe_wait_status(int status) {
    if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
    return "wait status " + std::to_string(status);
}

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

void write_text_file(const std::string& path, const std::string& content, const char* what) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    out.close();
    if (!out) throw Error(std::string("cannot write the ") + what + " to '" + path + "'");
}

}  // namespace keel::bench
