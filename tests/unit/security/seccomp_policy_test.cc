// The allow-lists themselves: names and numbers agree, each call is listed
// once with a reason, the roles differ where they must, and docs/security.md
// says exactly what the code allows.
#include <catch2/catch.hpp>

#include <seccomp.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "security/seccomp_policy.h"

using namespace keel::security;

namespace {

std::set<std::string> names_of(const std::vector<AllowedSyscall>& calls) {
    std::set<std::string> names;
    for (const auto& call : calls) names.emplace(call.name);
    return names;
}

// One documented row: the call, the argument values it is limited to, why.
struct DocRow {
    std::string values;
    std::string why;
};

std::string trim(std::string text) {
    const auto first = text.find_first_not_of(' ');
    if (first == std::string::npos) return {};
    return text.substr(first, text.find_last_not_of(' ') - first + 1);
}

// Splits a markdown table row on the '|' that are not escaped as "\|".
std::vector<std::string> cells(const std::string& line) {
    std::vector<std::string> out;
    std::string cell;
    for (size_t i = 1; i < line.size(); ++i) {
        if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
            cell += '|';
            ++i;
        } else if (line[i] == '|') {
            out.push_back(trim(cell));
            cell.clear();
        } else {
            cell += line[i];
        }
    }
    return out;
}

// docs/security.md's tables, by the heading each follows: "common" or a role.
std::map<std::string, std::map<std::string, DocRow>> documented_lists() {
    std::ifstream in(std::string(KEEL_SOURCE_DIR) + "/docs/security.md");
    REQUIRE(in);
    std::map<std::string, std::map<std::string, DocRow>> lists;
    std::string section, line;
    while (std::getline(in, line)) {
        if (line.starts_with("#")) {
            section.clear();
            if (line.find("(common)") != std::string::npos) section = "common";
            if (line.find("(sanitizer)") != std::string::npos) section = "sanitizer";
            for (const auto role : kAllThreadRoles) {
                if (line.find("(`" + std::string(to_string(role)) + "`)") != std::string::npos) {
                    section = std::string(to_string(role));
                }
            }
            continue;
        }
        if (section.empty() || !line.starts_with("| `")) continue;
        const auto row = cells(line);
        REQUIRE(row.size() == 3);
        std::string name = row[0];
        name.erase(std::remove(name.begin(), name.end(), '`'), name.end());
        INFO(line);
        CHECK(lists[section].count(name) == 0);
        lists[section][name] = DocRow{row[1], row[2]};
    }
    return lists;
}

// How the docs write an argument limit: "request `A`, `B`" style text built
// from the names, the way docs/security.md's tables read.
std::string values_text(const AllowedSyscall& call) {
    if (call.only_values.empty()) return {};
    std::string text = "argument " + std::to_string(call.argument_index) + ":";
    for (size_t i = 0; i < call.only_values.size(); ++i) {
        text += (i == 0 ? " `" : ", `") + std::string(call.only_values[i].name) + "`";
    }
    return text;
}

void check_documented(const std::map<std::string, DocRow>& documented, const std::vector<AllowedSyscall>& calls) {
    std::set<std::string> in_code;
    for (const auto& call : calls) {
        const std::string name(call.name);
        in_code.insert(name);
        INFO("system call " << name);
        REQUIRE(documented.count(name) == 1);
        CHECK(documented.at(name).why == call.why);
        CHECK(documented.at(name).values == values_text(call));
    }
    for (const auto& [name, row] : documented) {
        INFO("documented but not allowed: " << name);
        CHECK(in_code.count(name) == 1);
    }
}

}  // namespace

TEST_CASE("every allowed call's name is the system call its number is", "[seccomp]") {
    std::vector<const std::vector<AllowedSyscall>*> lists{&common_syscalls(), &sanitizer_runtime_syscalls()};
    for (const auto role : kAllThreadRoles) lists.push_back(&role_syscalls(role));
    for (const auto* list : lists) {
        std::set<int> numbers;
        for (const auto& call : *list) {
            INFO("system call " << call.name);
            CHECK(call.number >= 0);
            CHECK(seccomp_syscall_resolve_name(std::string(call.name).c_str()) == call.number);
            CHECK(numbers.insert(call.number).second);
            CHECK_FALSE(call.why.empty());
            for (const auto& value : call.only_values) CHECK_FALSE(value.name.empty());
        }
    }
}

TEST_CASE("each role's list is the common list plus its own, its own entry winning", "[seccomp]") {
    for (const auto role : kAllThreadRoles) {
        const auto all = allowed_syscalls(role);
        auto expected = names_of(common_syscalls());
        const auto own = names_of(role_syscalls(role));
        expected.insert(own.begin(), own.end());
#ifdef KEEL_SANITIZER_BUILD
        const auto sanitizer = names_of(sanitizer_runtime_syscalls());
        expected.insert(sanitizer.begin(), sanitizer.end());
#endif
        CHECK(names_of(all) == expected);
        CHECK(all.size() == expected.size());
    }
}

TEST_CASE("the roles differ where a breach would matter", "[seccomp]") {
    const auto vcpu = names_of(allowed_syscalls(ThreadRole::Vcpu));
    const auto event_loop = names_of(allowed_syscalls(ThreadRole::EventLoop));
    const auto api = names_of(allowed_syscalls(ThreadRole::Api));
    // Only the event loop opens files (what the API names, the report at exit).
    CHECK(vcpu.count("openat") == 0);
    CHECK(api.count("openat") == 0);
    CHECK(event_loop.count("openat") == 1);
    // Only the API thread takes connections; the API thread makes no ioctl.
    CHECK(api.count("accept4") == 1);
    CHECK(vcpu.count("accept4") == 0);
    CHECK(event_loop.count("accept4") == 0);
    CHECK(api.count("ioctl") == 0);
    // No thread creates sockets, starts programs, forks or changes its privileges.
    for (const auto* names : {&vcpu, &event_loop, &api}) {
        for (const char* never : {"socket", "connect", "execve", "execveat", "fork", "vfork", "clone", "clone3",
                                  "ptrace", "setuid", "setgid", "mount", "unshare", "setns", "prctl"}) {
            INFO(never);
            CHECK(names->count(never) == 0);
        }
    }
}

TEST_CASE("ioctl is limited by request: KVM_RUN on a vCPU only, the terminal on the event loop only", "[seccomp]") {
    const auto requests = [](ThreadRole role) {
        std::set<std::string> names;
        for (const auto& call : role_syscalls(role)) {
            if (call.name != "ioctl") continue;
            CHECK(call.argument_index == 1);
            for (const auto& value : call.only_values) names.emplace(value.name);
        }
        return names;
    };
    const auto vcpu = requests(ThreadRole::Vcpu);
    const auto event_loop = requests(ThreadRole::EventLoop);
    CHECK(vcpu.count("KVM_RUN") == 1);
    CHECK(event_loop.count("KVM_RUN") == 0);
    CHECK(vcpu.count("TCSETS") == 0);
    CHECK(event_loop.count("TCSETS") == 1);
    for (const auto* names : {&vcpu, &event_loop}) {
        for (const char* never : {"KVM_CREATE_VCPU", "KVM_SET_USER_MEMORY_REGION", "KVM_CREATE_VM", "TUNSETIFF"}) {
            INFO(never);
            CHECK(names->count(never) == 0);
        }
    }
}

TEST_CASE("ioctl requests are the kernel's numbers, not the C++ misreading of the 6.1 headers", "[seccomp]") {
    // <linux/kvm.h> included directly from C++ gives KVM_SET_GSI_ROUTING as
    // 0x4010ae6a (vmm/common/kvm_uapi.h says why); the kernel answers 0x4008ae6a.
    for (const auto& call : role_syscalls(ThreadRole::Vcpu)) {
        for (const auto& value : call.only_values) {
            if (value.name == "KVM_SET_GSI_ROUTING") CHECK(value.value == 0x4008ae6a);
        }
    }
}

TEST_CASE("docs/security.md lists every allowed call with the code's reason and limits", "[seccomp]") {
    const auto documented = documented_lists();
    REQUIRE(documented.count("common") == 1);
    check_documented(documented.at("common"), common_syscalls());
    REQUIRE(documented.count("sanitizer") == 1);
    check_documented(documented.at("sanitizer"), sanitizer_runtime_syscalls());
    for (const auto role : kAllThreadRoles) {
        INFO("role " << to_string(role));
        REQUIRE(documented.count(std::string(to_string(role))) == 1);
        check_documented(documented.at(std::string(to_string(role))), role_syscalls(role));
    }
}
