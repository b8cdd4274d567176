#pragma once
// The host system calls a payload can reach if it takes over its sandbox,
// for `keel bench compare`: a VM's guest code reaches the host only through
// VM exits, and if it broke into keel, only what that thread's seccomp filter
// allows (docs/security.md); a container's payload calls the host kernel
// directly, limited by the container's seccomp profile if it has one.

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace keel::bench {

// Podman's and Buildah's default profile, from Debian's
// golang-github-containers-common.
inline constexpr const char* kPodmanSeccompProfile = "/usr/share/containers/seccomp.json";

// The capabilities a Podman container gets by default (containers.conf's
// default_capabilities); some profile rules depend on them.
[[nodiscard]] const std::set<std::string>& podman_default_capabilities();

// Pure: the calls of `abi` (names) that a process with `capabilities` may
// make on x86_64 under an OCI seccomp profile (the JSON format of Docker,
// Podman and the OCI runtime spec's linux.seccomp): those an applicable rule
// allows, with or without argument conditions, or every call no
// unconditional rule denies when the default action allows. Throws
// keel::Error when the profile is not of that format.
[[nodiscard]] std::set<std::string> profile_allowed_calls(const nlohmann::json& profile,
                                                          const std::set<std::string>& capabilities,
                                                          const std::set<std::string>& abi);

struct ThreadRoleSurface {
    std::string role;
    size_t allowed = 0;
};

struct SyscallSurface {
    size_t abi_calls = 0;  // the native ABI's calls (the UAPI headers keel was built with)
    std::vector<ThreadRoleSurface> keel_roles;
    size_t keel_any_thread = 0;  // the union of the roles' lists
    // Podman's default profile, when installed; otherwise why not.
    std::optional<size_t> podman_profile_calls;
    std::string podman_profile_note;
};

// keel's lists (this build's), and Podman's profile if the file is there.
[[nodiscard]] SyscallSurface measure_syscall_surface(const std::string& podman_profile = kPodmanSeccompProfile);

// Pure: the report's section and its JSON. `keel_seccomp_mode` is what the
// bench's keel runs reported (empty: not known).
[[nodiscard]] std::string syscall_surface_text(const SyscallSurface& surface, const std::string& keel_seccomp_mode);
[[nodiscard]] nlohmann::json syscall_surface_json(const SyscallSurface& surface, const std::string& keel_seccomp_mode);

}  // namespace keel::bench
