// Each role's filter loaded for real, in a forked child: a call on the role's
// list returns, a call off it ends the child with SIGSYS and the reporter's
// one line naming the thread, the role and the call.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "common/kvm_uapi.h"
#include "security/seccomp_filter.h"
#include "security/seccomp_policy.h"

using namespace keel::security;

namespace {

struct ChildOutcome {
    bool exited = false;
    int exit_code = -1;
    int signal = 0;
    std::string stderr_text;
};

// Runs `body` in a child whose only thread is named `thread_name` and carries
// `role`'s filter in `mode`. The child reports back through its exit code:
// body() returns the code (the child never returns through Catch).
ChildOutcome run_filtered(ThreadRole role, SeccompMode mode, const std::function<int()>& body,
                          const char* thread_name = "keel-test") {
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::dup2(pipe_fds[1], STDERR_FILENO);
        pthread_setname_np(pthread_self(), thread_name);
        try {
            install_violation_reporter();
            install_thread_filter(role, mode);
        } catch (const std::exception& e) {
            const std::string text = std::string("install failed: ") + e.what() + "\n";
            (void)!::write(STDERR_FILENO, text.data(), text.size());
            ::_exit(100);
        }
        ::_exit(body());
    }
    ::close(pipe_fds[1]);
    ChildOutcome outcome;
    char buffer[1024];
    ssize_t n;
    while ((n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0) outcome.stderr_text.append(buffer, static_cast<size_t>(n));
    ::close(pipe_fds[0]);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    outcome.exited = WIFEXITED(status);
    if (outcome.exited) outcome.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) outcome.signal = WTERMSIG(status);
    return outcome;
}

// Coming back from the call is what counts, whatever it returned.
int returned(long) { return 0; }

}  // namespace

TEST_CASE("a vCPU thread may call KVM_RUN but not open a file or make another ioctl", "[seccomp]") {
    const auto allowed = run_filtered(ThreadRole::Vcpu, SeccompMode::Enforce,
                                      [] { return returned(::ioctl(-1, KVM_RUN, 0)); });
    CHECK(allowed.exited);
    CHECK(allowed.exit_code == 0);
    CHECK(allowed.stderr_text.empty());

    const auto opened = run_filtered(
        ThreadRole::Vcpu, SeccompMode::Enforce, [] { return returned(::openat(AT_FDCWD, "/", O_RDONLY)); },
        "keel-vcpu0");
    CHECK(opened.signal == SIGSYS);
    CHECK(opened.stderr_text.find("keel: thread 'keel-vcpu0' (vcpu) made system call 257 (openat) with arguments ") == 0);

    const auto other_ioctl = run_filtered(ThreadRole::Vcpu, SeccompMode::Enforce,
                                          [] { return returned(::ioctl(-1, KVM_CREATE_VCPU, 0)); });
    CHECK(other_ioctl.signal == SIGSYS);
    CHECK(other_ioctl.stderr_text.find("(ioctl)") != std::string::npos);
}

TEST_CASE("each role may make every ioctl request its list names", "[seccomp]") {
    for (const auto role : kAllThreadRoles) {
        for (const auto& call : allowed_syscalls(role)) {
            if (call.name != "ioctl") continue;
            for (const auto& request : call.only_values) {
                INFO("role " << to_string(role) << ", request " << request.name);
                const auto made = run_filtered(role, SeccompMode::Enforce, [value = request.value] {
                    return returned(::ioctl(-1, static_cast<unsigned long>(value), 0));
                });
                INFO("child's stderr: " << made.stderr_text);
                CHECK(made.exited);
                CHECK(made.exit_code == 0);
            }
        }
    }
}

TEST_CASE("the event loop may open files and lock a disk but not accept connections", "[seccomp]") {
    const auto allowed = run_filtered(ThreadRole::EventLoop, SeccompMode::Enforce, [] {
        const int fd = ::openat(AT_FDCWD, "/", O_RDONLY | O_DIRECTORY);
        if (fd < 0) return 2;
        struct flock lock {};
        (void)::fcntl(-1, F_OFD_SETLK, &lock);
        ::close(fd);
        return 0;
    });
    CHECK(allowed.exited);
    CHECK(allowed.exit_code == 0);

    const auto accepted = run_filtered(ThreadRole::EventLoop, SeccompMode::Enforce,
                                       [] { return returned(::accept4(-1, nullptr, nullptr, 0)); });
    CHECK(accepted.signal == SIGSYS);
    CHECK(accepted.stderr_text.find("(event-loop) made system call 288 (accept4) with arguments 0xffffffff, 0x0, 0x0, which") != std::string::npos);

    const auto other_fcntl =
        run_filtered(ThreadRole::EventLoop, SeccompMode::Enforce, [] { return returned(::fcntl(0, F_SETFL, 0)); });
    CHECK(other_fcntl.signal == SIGSYS);
}

TEST_CASE("the API thread may accept and answer but not run a vCPU or create a socket", "[seccomp]") {
    const auto allowed = run_filtered(ThreadRole::Api, SeccompMode::Enforce,
                                      [] { return returned(::accept4(-1, nullptr, nullptr, 0)); });
    CHECK(allowed.exited);
    CHECK(allowed.exit_code == 0);

    const auto kvm_run =
        run_filtered(ThreadRole::Api, SeccompMode::Enforce, [] { return returned(::ioctl(-1, KVM_RUN, 0)); });
    CHECK(kvm_run.signal == SIGSYS);

    const auto socket_made = run_filtered(ThreadRole::Api, SeccompMode::Enforce,
                                          [] { return returned(::socket(AF_INET, SOCK_STREAM, 0)); });
    CHECK(socket_made.signal == SIGSYS);
    CHECK(socket_made.stderr_text.find("(socket)") != std::string::npos);
}

TEST_CASE("no thread may make memory executable or start a program", "[seccomp]") {
    for (const auto role : kAllThreadRoles) {
        INFO("role " << to_string(role));
        const auto executable = run_filtered(role, SeccompMode::Enforce, [] {
            void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            return returned(::mprotect(page, 4096, PROT_READ | PROT_EXEC));
        });
        CHECK(executable.signal == SIGSYS);
        const auto writable = run_filtered(role, SeccompMode::Enforce, [] {
            void* page = ::mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            return returned(::mprotect(page, 4096, PROT_READ | PROT_WRITE));
        });
        CHECK(writable.exit_code == 0);
        const auto exec = run_filtered(role, SeccompMode::Enforce, [] {
            char* const argv[] = {nullptr};
            return returned(::execve("/bin/true", argv, argv));
        });
        CHECK(exec.signal == SIGSYS);
    }
}

TEST_CASE("a filtered thread shows seccomp mode 2 and no_new_privs in /proc", "[seccomp]") {
    const auto status = run_filtered(ThreadRole::EventLoop, SeccompMode::Enforce, [] {
        const int fd = ::openat(AT_FDCWD, "/proc/thread-self/status", O_RDONLY);
        if (fd < 0) return 2;
        char text[4096];
        const ssize_t n = ::read(fd, text, sizeof text - 1);
        if (n <= 0) return 3;
        text[n] = '\0';
        const std::string_view view(text, static_cast<size_t>(n));
        if (view.find("Seccomp:\t2") == std::string_view::npos) return 4;
        if (view.find("NoNewPrivs:\t1") == std::string_view::npos) return 5;
        return 0;
    });
    INFO("child's stderr: " << status.stderr_text << ", signal " << status.signal);
    CHECK(status.exited);
    CHECK(status.exit_code == 0);
}

TEST_CASE("seccomp log mode lets a call off the list through, off loads nothing", "[seccomp]") {
    const auto logged = run_filtered(ThreadRole::Api, SeccompMode::Log, [] {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        return fd >= 0 ? 0 : 2;
    });
    CHECK(logged.exited);
    CHECK(logged.exit_code == 0);

    const auto off = run_filtered(ThreadRole::Vcpu, SeccompMode::Off, [] {
        const int fd = ::openat(AT_FDCWD, "/proc/thread-self/status", O_RDONLY);
        if (fd < 0) return 2;
        char text[4096];
        const ssize_t n = ::read(fd, text, sizeof text - 1);
        if (n <= 0) return 3;
        return std::string_view(text, static_cast<size_t>(n)).find("Seccomp:\t0") != std::string_view::npos ? 0 : 4;
    });
    CHECK(off.exited);
    CHECK(off.exit_code == 0);
}

TEST_CASE("the seccomp modes are on, log and off", "[seccomp]") {
    CHECK(parse_seccomp_mode("on") == SeccompMode::Enforce);
    CHECK(parse_seccomp_mode("log") == SeccompMode::Log);
    CHECK(parse_seccomp_mode("off") == SeccompMode::Off);
    CHECK_FALSE(parse_seccomp_mode("strict").has_value());
    for (const auto mode : {SeccompMode::Enforce, SeccompMode::Log, SeccompMode::Off}) {
        CHECK(parse_seccomp_mode(to_string(mode)) == mode);
    }
}
