#include "bench/system_run.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "bench/child_process.h"
#include "bench/oci_bundle.h"
#include "common/error.h"
#include "core/boot_clock.h"

namespace keel::bench {

bool program_in_path(const std::string& program) {
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
    }
    return false;
}

void check_systems_available(const std::vector<std::string>& systems, bool strace) {
    for (const auto& system : systems) {
        if (system == kQemuMicrovm && !program_in_path("qemu-system-x86_64")) {
            throw Error(
                "qemu-microvm needs qemu-system-x86_64 (Debian: apt-get install qemu-system-x86); or leave it "
                "out");
        }
        if ((system == kCrun || system == kRunc) && !program_in_path(system)) {
            throw Error(system + " is not installed (Debian: apt-get install " + system + "); or leave it out");
        }
        if ((system == kCrun || system == kRunc) && ::geteuid() != 0) {
            throw Error(system +
                        " runs the container as root here, and this bench is not root; run it as root or "
                        "leave " +
                        system + " out");
        }
    }
    if (strace && !program_in_path("strace")) {
        throw Error("counting host syscalls needs strace (Debian: apt-get install strace); or add --no-strace");
    }
}

void prepare_bundle(const CompareSetup& setup, const std::string& bundle) {
    std::filesystem::create_directories(bundle + "/rootfs");
    unpack_initrd(setup.initrd, bundle + "/rootfs");
    std::error_code error;
    if (!std::filesystem::exists(bundle + "/rootfs" + setup.payload, error)) {
        throw Error("the initrd '" + setup.initrd + "' has no payload '" + setup.payload +
                    "' (build it with guest-images/build-stock-guest, or name one with --payload)");
    }
    write_text_file(bundle + "/config.json", oci_config(setup.payload).dump(2) + "\n", "container configuration");
}

void abandon_run(pid_t pid, const std::string& system, const std::string& container_id) {
    ::kill(pid, SIGKILL);
    int status = 0;
    (void)::waitpid(pid, &status, 0);
    if (!is_vm_system(system)) run_cleanup({system, "delete", "--force", container_id});
}

ConsoleWatch::ConsoleWatch(int fd, const std::string& log_path, std::string marker)
    : m_fd(fd), m_log(log_path, std::ios::binary | std::ios::trunc), m_marker(std::move(marker)) {}

ConsoleWatch::Result ConsoleWatch::read_available(bool want_marker, uint64_t& when_ns) {
    char buffer[4096];
    for (;;) {
        const ssize_t n = ::read(m_fd, buffer, sizeof buffer);
        if (n == 0) return Result::End;
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN ? Result::Nothing : Result::End;
        }
        when_ns = monotonic_ns();
        m_log.write(buffer, n);
        m_log.flush();
        if (!want_marker) continue;
        m_tail.append(buffer, static_cast<size_t>(n));
        if (m_tail.find(m_marker) != std::string::npos) {
            m_tail.clear();
            return Result::Marker;
        }
        if (m_tail.size() > m_marker.size()) m_tail.erase(0, m_tail.size() - m_marker.size());
    }
}

ConsoleWatch::Result ConsoleWatch::read_until(bool want_marker, uint64_t deadline_ns, uint64_t& when_ns) {
    for (;;) {
        const uint64_t now = monotonic_ns();
        if (now >= deadline_ns) return Result::Timeout;
        pollfd p{m_fd, POLLIN, 0};
        const int ready = ::poll(&p, 1, poll_wait_ms(now, deadline_ns));
        if (ready < 0 && errno != EINTR) throw_errno("poll on a run's console");
        if (ready <= 0) continue;
        const Result result = read_available(want_marker, when_ns);
        if (result != Result::Nothing) return result;
    }
}

}  // namespace keel::bench
