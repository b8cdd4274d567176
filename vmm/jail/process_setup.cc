#include "jail/process_setup.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "common/error.h"
#include "common/fd.h"

namespace keel::jail {

namespace {

volatile sig_atomic_t g_child = 0;

void forward_signal(int signal) {
    if (g_child > 0) ::kill(static_cast<pid_t>(g_child), signal);
}

void set_limit(int resource, uint64_t value, const char* name) {
    const rlimit limit{value, value};
    if (::setrlimit(resource, &limit) != 0)
        throw_errno(std::string("cannot set ") + name + " to " + std::to_string(value));
}

}  // namespace

void close_inherited_fds() {
    if (::close_range(3, ~0U, 0) == 0) return;
    if (errno != ENOSYS) throw_errno("close_range");
    // Kernels before 5.9: close what /proc/self/fd lists.
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) throw_errno("cannot list /proc/self/fd");
    std::vector<int> fds;
    while (const dirent* entry = ::readdir(dir)) {
        const int fd = std::atoi(entry->d_name);
        if (fd > 2 && fd != ::dirfd(dir)) fds.push_back(fd);
    }
    ::closedir(dir);
    for (const int fd : fds) ::close(fd);
}

void join_network_namespace(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) throw_errno("cannot open '" + path + "'");
    if (::setns(fd.get(), CLONE_NEWNET) != 0) throw_errno("cannot enter the network namespace '" + path + "'");
}

std::optional<int> fork_into_pid_namespace(bool detach) {
    if (::unshare(CLONE_NEWPID) != 0) throw_errno("cannot unshare the pid namespace");
    const pid_t child = ::fork();
    if (child < 0) throw_errno("cannot fork into the new pid namespace");
    if (child == 0) return std::nullopt;
    if (detach) return 0;
    g_child = child;
    struct sigaction action {};
    action.sa_handler = forward_signal;
    ::sigemptyset(&action.sa_mask);
    for (const int signal : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(signal, &action, nullptr);
    int status = 0;
    while (::waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) throw_errno("cannot wait for keel (pid " + std::to_string(child) + ")");
    }
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

void set_resource_limits(const ResourceLimits& limits) {
    set_limit(RLIMIT_NOFILE, limits.open_files, "RLIMIT_NOFILE");
    if (limits.file_size) set_limit(RLIMIT_FSIZE, *limits.file_size, "RLIMIT_FSIZE");
}

void daemonize() {
    if (::setsid() < 0) throw_errno("setsid");
    UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!null.valid()) throw_errno("cannot open /dev/null");
    for (const int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
        if (::dup2(null.get(), fd) < 0) throw_errno("cannot redirect fd " + std::to_string(fd) + " to /dev/null");
    }
}

void drop_privileges(uid_t uid, gid_t gid) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw_errno("prctl(PR_SET_NO_NEW_PRIVS)");
    if (::setgroups(0, nullptr) != 0) throw_errno("setgroups");
    if (::setgid(gid) != 0) throw_errno("setgid(" + std::to_string(gid) + ")");
    if (::setuid(uid) != 0) throw_errno("setuid(" + std::to_string(uid) + ")");
}

void exec_keel(const std::string& path, const std::vector<std::string>& args) {
    std::vector<char*> argv{const_cast<char*>("keel")};
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    char* no_environment[] = {nullptr};
    ::execve(path.c_str(), argv.data(), no_environment);
    throw_errno("cannot execute '" + path + "'");
}

}  // namespace keel::jail
