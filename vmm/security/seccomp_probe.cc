#include "security/seccomp_probe.h"

#ifdef KEEL_TEST_HOOKS
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <string>

#include "common/kvm_uapi.h"
#endif

namespace keel::security {

#ifdef KEEL_TEST_HOOKS

namespace {

// Each role's probe calls: the allowed one is in the role's list, the
// forbidden one is in another role's list but not in this one's, so the
// probe also shows that the lists differ by role.
long allowed_call(ThreadRole role) {
    switch (role) {
        case ThreadRole::Vcpu:
            return ::ioctl(-1, KVM_RUN, 0);
        case ThreadRole::EventLoop: {
            const int fd = ::openat(AT_FDCWD, "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (fd >= 0) ::close(fd);
            return fd;
        }
        case ThreadRole::Api:
            return ::accept4(-1, nullptr, nullptr, SOCK_CLOEXEC);
    }
    return -1;
}

const char* allowed_call_name(ThreadRole role) {
    switch (role) {
        case ThreadRole::Vcpu:
            return "ioctl(KVM_RUN)";
        case ThreadRole::EventLoop:
            return "openat";
        case ThreadRole::Api:
            return "accept4";
    }
    return "?";
}

void forbidden_call(ThreadRole role) {
    switch (role) {
        case ThreadRole::Vcpu:
            (void)::openat(AT_FDCWD, "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            break;
        case ThreadRole::EventLoop:
            (void)::accept4(-1, nullptr, nullptr, SOCK_CLOEXEC);
            break;
        case ThreadRole::Api:
            (void)::ioctl(-1, KVM_RUN, 0);
            break;
    }
}

std::atomic<bool> g_probed[3];

}  // namespace

SeccompProbe prepare_seccomp_probe(ThreadRole role) {
    const char* wanted = std::getenv("KEEL_TEST_SECCOMP_PROBE");
    if (wanted == nullptr) return {};
    // ROLE:KIND[,ROLE:KIND...]
    const std::string prefix = std::string(to_string(role)) + ":";
    std::string_view rest = wanted;
    while (!rest.empty()) {
        const auto comma = rest.find(',');
        const auto item = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        if (!item.starts_with(prefix)) continue;
        const auto kind = item.substr(prefix.size());
        if (kind == "allowed") return {role, SeccompProbe::Kind::Allowed};
        if (kind == "forbidden") return {role, SeccompProbe::Kind::Forbidden};
    }
    return {};
}

void run_seccomp_probe(const SeccompProbe& probe) {
    if (probe.kind == SeccompProbe::Kind::None) return;
    if (g_probed[static_cast<size_t>(probe.role)].exchange(true)) return;
    if (probe.kind == SeccompProbe::Kind::Forbidden) {
        spdlog::warn("seccomp probe: the {} thread makes a call outside its list", to_string(probe.role));
        forbidden_call(probe.role);
        spdlog::error("seccomp probe: the {} thread's forbidden call returned", to_string(probe.role));
        return;
    }
    const long result = allowed_call(probe.role);
    const int error = result < 0 ? errno : 0;
    spdlog::warn("seccomp probe: the {} thread's allowed call {} returned {} (errno {})", to_string(probe.role),
                 allowed_call_name(probe.role), result, error);
}

bool seccomp_audit_requested() {
    const char* wanted = std::getenv("KEEL_TEST_SECCOMP_LOG");
    return wanted != nullptr && std::string_view(wanted) == "1";
}

#else

SeccompProbe prepare_seccomp_probe(ThreadRole) {
    return {};
}
void run_seccomp_probe(const SeccompProbe&) {}
bool seccomp_audit_requested() {
    return false;
}

#endif

}  // namespace keel::security
