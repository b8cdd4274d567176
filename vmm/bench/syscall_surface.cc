#include "bench/syscall_surface.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "security/abi_syscalls.h"
#include "security/seccomp_policy.h"

namespace keel::bench {
namespace {

using nlohmann::json;

// The profile format's names for x86_64 (Docker's and Podman's "arches").
bool names_x86_64(const json& arches) {
    return std::any_of(arches.begin(), arches.end(), [](const json& arch) {
        return arch.is_string() && (arch == "amd64" || arch == "x86_64" || arch == "SCMP_ARCH_X86_64");
    });
}

std::vector<std::string> strings_at(const json& object, const char* key, const std::string& where) {
    std::vector<std::string> out;
    if (!object.is_object() || !object.contains(key)) return out;
    const json& list = object.at(key);
    if (!list.is_array()) throw Error(where + ": '" + key + "' is not a list");
    for (const auto& item : list) {
        if (!item.is_string()) throw Error(where + ": '" + key + "' holds a non-string");
        out.push_back(item.get<std::string>());
    }
    return out;
}

// Whether a rule's "includes"/"excludes" (architectures, capabilities) let
// it apply to an x86_64 process with `capabilities`.
bool rule_applies(const json& rule, const std::set<std::string>& capabilities, const std::string& where) {
    const json none = json::object();
    const json& includes = rule.contains("includes") ? rule.at("includes") : none;
    const json& excludes = rule.contains("excludes") ? rule.at("excludes") : none;
    if (includes.is_object() && includes.contains("arches") && !names_x86_64(includes.at("arches"))) return false;
    if (excludes.is_object() && excludes.contains("arches") && names_x86_64(excludes.at("arches"))) return false;
    for (const auto& cap : strings_at(includes, "caps", where)) {
        if (!capabilities.contains(cap)) return false;
    }
    for (const auto& cap : strings_at(excludes, "caps", where)) {
        if (capabilities.contains(cap)) return false;
    }
    return true;
}

bool allows(const std::string& action) {
    return action == "SCMP_ACT_ALLOW" || action == "SCMP_ACT_LOG";
}

}  // namespace

const std::set<std::string>& podman_default_capabilities() {
    static const std::set<std::string> caps{"CAP_CHOWN",   "CAP_DAC_OVERRIDE",     "CAP_FOWNER",    "CAP_FSETID",
                                            "CAP_KILL",    "CAP_NET_BIND_SERVICE", "CAP_SETFCAP",   "CAP_SETGID",
                                            "CAP_SETPCAP", "CAP_SETUID",           "CAP_SYS_CHROOT"};
    return caps;
}

std::set<std::string> profile_allowed_calls(const json& profile, const std::set<std::string>& capabilities,
                                            const std::set<std::string>& abi) {
    if (!profile.is_object() || !profile.contains("defaultAction") || !profile.at("defaultAction").is_string()) {
        throw Error("seccomp profile: no 'defaultAction'");
    }
    const json empty = json::array();
    const json& rules = profile.contains("syscalls") ? profile.at("syscalls") : empty;
    if (!rules.is_array()) throw Error("seccomp profile: 'syscalls' is not a list");

    std::set<std::string> allowed;
    std::set<std::string> denied;  // by a rule without argument conditions
    for (size_t i = 0; i < rules.size(); ++i) {
        const json& rule = rules[i];
        const std::string where = "seccomp profile: rule " + std::to_string(i + 1);
        if (!rule.is_object() || !rule.contains("action") || !rule.at("action").is_string()) {
            throw Error(where + ": no 'action'");
        }
        if (!rule_applies(rule, capabilities, where)) continue;
        auto names = strings_at(rule, "names", where);
        if (rule.contains("name") && rule.at("name").is_string()) names.push_back(rule.at("name").get<std::string>());
        const bool conditional = rule.contains("args") && rule.at("args").is_array() && !rule.at("args").empty();
        for (const auto& name : names) {
            if (!abi.contains(name)) continue;  // another architecture's, or newer than the host's headers
            if (allows(rule.at("action").get<std::string>())) {
                allowed.insert(name);
            } else if (!conditional) {
                denied.insert(name);
            }
        }
    }
    if (allows(profile.at("defaultAction").get<std::string>())) {
        for (const auto& name : abi) {
            if (!denied.contains(name)) allowed.insert(name);
        }
    }
    return allowed;
}

SyscallSurface measure_syscall_surface(const std::string& podman_profile) {
    SyscallSurface surface;
    std::set<std::string> abi;
    for (const auto& call : security::abi_syscalls()) abi.emplace(call.name);
    surface.abi_calls = abi.size();

    std::set<std::string_view> any_thread;
    for (const auto role : security::kAllThreadRoles) {
        const auto calls = security::allowed_syscalls(role);
        surface.keel_roles.push_back({std::string(security::to_string(role)), calls.size()});
        for (const auto& call : calls) any_thread.insert(call.name);
    }
    surface.keel_any_thread = any_thread.size();

    std::ifstream in(podman_profile);
    if (!in) {
        surface.podman_profile_note = podman_profile + " not installed (Debian: golang-github-containers-common)";
        return surface;
    }
    const json profile = json::parse(in, nullptr, false);
    if (profile.is_discarded()) {
        surface.podman_profile_note = podman_profile + " is not JSON";
        return surface;
    }
    try {
        surface.podman_profile_calls = profile_allowed_calls(profile, podman_default_capabilities(), abi).size();
    } catch (const Error& e) {
        surface.podman_profile_note = podman_profile + ": " + e.what();
    }
    return surface;
}

std::string syscall_surface_text(const SyscallSurface& s, const std::string& keel_seccomp_mode) {
    std::ostringstream out;
    out << "\nhost system calls a payload can make if it takes over its sandbox (of the " << s.abi_calls
        << " x86_64 calls in the host's UAPI headers):\n";
    out << "  keel: guest code makes none (it reaches the host only through the VM exits keel serves); a guest\n"
           "    that broke into keel gets its thread's seccomp list: ";
    for (size_t i = 0; i < s.keel_roles.size(); ++i) {
        out << (i == 0 ? "" : ", ") << s.keel_roles[i].role << " " << s.keel_roles[i].allowed;
    }
    out << "; any thread " << s.keel_any_thread;
    if (!keel_seccomp_mode.empty()) out << " (--seccomp " << keel_seccomp_mode << " in these runs)";
    out << "\n";
    out << "  qemu-microvm as run here (no -sandbox): " << s.abi_calls << "\n";
    out << "  crun/runc with this bench's OCI config (no seccomp profile, as 'crun spec' makes it): " << s.abi_calls
        << "\n";
    out << "  a container with Podman's default profile and capabilities: ";
    if (s.podman_profile_calls) {
        out << *s.podman_profile_calls << " (" << kPodmanSeccompProfile << ")\n";
    } else {
        out << "- (" << s.podman_profile_note << ")\n";
    }
    return out.str();
}

json syscall_surface_json(const SyscallSurface& s, const std::string& keel_seccomp_mode) {
    json roles = json::object();
    for (const auto& role : s.keel_roles) roles[role.role] = role.allowed;
    json out{{"abi_calls", s.abi_calls},
             {"keel", {{"guest_code", 0}, {"per_thread_role", roles}, {"any_thread", s.keel_any_thread}}},
             {"qemu_microvm_as_run", s.abi_calls},
             {"container_as_run", s.abi_calls},
             {"podman_default_profile", s.podman_profile_calls ? json(*s.podman_profile_calls) : json(nullptr)}};
    if (!keel_seccomp_mode.empty()) out["keel"]["seccomp_mode"] = keel_seccomp_mode;
    if (!s.podman_profile_note.empty()) out["podman_default_profile_note"] = s.podman_profile_note;
    return out;
}

}  // namespace keel::bench
