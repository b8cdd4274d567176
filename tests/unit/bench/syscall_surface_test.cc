// keel bench compare's syscall-surface figures: the native ABI table generated
// from the UAPI header, an OCI seccomp profile read for x86_64 and a set of
// capabilities, and the report's section.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>

#include "bench/syscall_surface.h"
#include "common/error.h"
#include "security/abi_syscalls.h"

using keel::bench::profile_allowed_calls;
using nlohmann::json;

namespace {

const std::set<std::string> kAbi{"read", "write", "chroot", "bpf", "socket", "arch_prctl", "kexec_load", "mount"};

}  // namespace

TEST_CASE("the native ABI table is the UAPI header's, in number order", "[bench]") {
    const auto calls = keel::security::abi_syscalls();
    REQUIRE(calls.size() > 300);
    CHECK(calls[0].name == "read");
    CHECK(calls[0].number == 0);
    CHECK(keel::security::abi_syscall_number("write") == 1);
    CHECK(keel::security::abi_syscall_number("openat") == 257);
    CHECK(keel::security::abi_syscall_number("io_uring_enter") == 426);
    CHECK_FALSE(keel::security::abi_syscall_number("no_such_call").has_value());
    CHECK(std::is_sorted(calls.begin(), calls.end(), [](const auto& a, const auto& b) { return a.number < b.number; }));
    // Every `#define __NR_x N` of the header, once.
    std::ifstream header("/usr/include/x86_64-linux-gnu/asm/unistd_64.h");
    if (!header) return;
    const std::regex define("^#define __NR_[a-z0-9_]+ [0-9]+$");
    size_t defines = 0;
    for (std::string line; std::getline(header, line);) {
        if (std::regex_match(line, define)) ++defines;
    }
    CHECK(calls.size() == defines);
}

TEST_CASE("a default-deny profile allows what its applicable rules allow, conditions or not", "[bench]") {
    const auto profile = json::parse(R"({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["read", "write", "not_on_this_host"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
            {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["chroot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_CHROOT"]}},
            {"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO"}
        ]})");
    const auto allowed = profile_allowed_calls(profile, {"CAP_SYS_CHROOT"}, kAbi);
    CHECK(allowed == std::set<std::string>{"read", "write", "socket", "arch_prctl", "chroot"});
    // Without the capability its rule does not apply.
    CHECK_FALSE(profile_allowed_calls(profile, {}, kAbi).contains("chroot"));
    CHECK(profile_allowed_calls(profile, {"CAP_SYS_CHROOT", "CAP_SYS_ADMIN"}, kAbi).contains("bpf"));
}

TEST_CASE("a default-allow profile allows every call no unconditional rule denies", "[bench]") {
    const auto profile = json::parse(R"({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["kexec_load", "mount"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}]},
            {"names": ["bpf"], "action": "SCMP_ACT_KILL", "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
        ]})");
    CHECK(profile_allowed_calls(profile, {}, kAbi) ==
          std::set<std::string>{"read", "write", "chroot", "socket", "arch_prctl"});
    CHECK(profile_allowed_calls(profile, {"CAP_SYS_ADMIN"}, kAbi).contains("bpf"));
}

TEST_CASE("a profile not of the OCI seccomp format is a one-line error", "[bench]") {
    CHECK_THROWS_WITH(profile_allowed_calls(json::parse("[]"), {}, kAbi), "seccomp profile: no 'defaultAction'");
    CHECK_THROWS_WITH(profile_allowed_calls(json::parse(R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": {}})"), {},
                                            kAbi),
                      "seccomp profile: 'syscalls' is not a list");
    CHECK_THROWS_WITH(profile_allowed_calls(json::parse(R"({"defaultAction": "SCMP_ACT_ERRNO",
                                                            "syscalls": [{"names": ["read"]}]})"),
                                            {}, kAbi),
                      "seccomp profile: rule 1: no 'action'");
    CHECK_THROWS_WITH(profile_allowed_calls(json::parse(R"({"defaultAction": "SCMP_ACT_ERRNO",
                                                            "syscalls": [{"names": [1], "action": "SCMP_ACT_ALLOW"}]})"),
                                            {}, kAbi),
                      "seccomp profile: rule 1: 'names' holds a non-string");
}

TEST_CASE("keel's lists and Podman's default profile, as the bench reports them", "[bench]") {
    const auto surface = keel::bench::measure_syscall_surface();
    CHECK(surface.abi_calls == keel::security::abi_syscalls().size());
    REQUIRE(surface.keel_roles.size() == 3);
    size_t largest = 0, sum = 0;
    for (const auto& role : surface.keel_roles) {
        largest = std::max(largest, role.allowed);
        sum += role.allowed;
    }
    CHECK(surface.keel_any_thread >= largest);
    CHECK(surface.keel_any_thread <= sum);
    CHECK(surface.keel_any_thread < surface.abi_calls / 4);

    const auto text = keel::bench::syscall_surface_text(surface, "on");
    CHECK(text.find("(of the " + std::to_string(surface.abi_calls) + " x86_64 calls") != std::string::npos);
    CHECK(text.find("; any thread " + std::to_string(surface.keel_any_thread) + " (--seccomp on in these runs)") !=
          std::string::npos);
    const auto j = keel::bench::syscall_surface_json(surface, "on");
    CHECK(j["keel"]["any_thread"] == surface.keel_any_thread);
    CHECK(j["keel"]["per_thread_role"]["vcpu"] == surface.keel_roles[0].allowed);

    if (!std::filesystem::exists(keel::bench::kPodmanSeccompProfile)) {
        CHECK_FALSE(surface.podman_profile_calls.has_value());
        CHECK(surface.podman_profile_note.find("golang-github-containers-common") != std::string::npos);
        WARN("Podman's default seccomp profile is not installed: its figure is not checked");
        return;
    }
    // Debian 12's profile allows most of the ABI and denies, among others,
    // kexec, module loading and (without CAP_SYS_ADMIN) bpf.
    REQUIRE(surface.podman_profile_calls.has_value());
    CHECK(*surface.podman_profile_calls > surface.abi_calls / 2);
    CHECK(*surface.podman_profile_calls < surface.abi_calls);
    std::ifstream in(keel::bench::kPodmanSeccompProfile);
    std::set<std::string> abi;
    for (const auto& call : keel::security::abi_syscalls()) abi.emplace(call.name);
    const auto allowed = profile_allowed_calls(json::parse(in), keel::bench::podman_default_capabilities(), abi);
    CHECK(allowed.contains("read"));
    CHECK(allowed.contains("chroot"));  // CAP_SYS_CHROOT is a default capability
    CHECK_FALSE(allowed.contains("kexec_load"));
    CHECK_FALSE(allowed.contains("init_module"));
    CHECK_FALSE(allowed.contains("bpf"));
    CHECK(text.find("default profile and capabilities: " + std::to_string(*surface.podman_profile_calls)) !=
          std::string::npos);
}

TEST_CASE("a missing Podman profile is a note in the report, not an error", "[bench]") {
    const auto surface = keel::bench::measure_syscall_surface("/nonexistent/seccomp.json");
    CHECK_FALSE(surface.podman_profile_calls.has_value());
    CHECK(keel::bench::syscall_surface_text(surface, "")
              .find("- (/nonexistent/seccomp.json not installed (Debian: golang-github-containers-common))") !=
          std::string::npos);
    CHECK(keel::bench::syscall_surface_json(surface, "")["podman_default_profile"].is_null());
}
