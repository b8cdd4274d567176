#pragma once
// What each of keel's threads may ask the kernel once it runs guest-influenced
// code: the one readable place for the allow-lists. docs/security.md lists the
// same calls with the same reasons (tests/unit/security holds the two together).

#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace keel::security {

// The threads keel runs while a guest runs.
//  Vcpu:      one per vCPU; KVM_RUN and the exits it returns (port and MMIO
//             accesses to devices, the guest's MSI and queue set-up).
//  EventLoop: the main thread once the VM is built: device I/O (disk, TAP,
//             console), signals, the API's actions, and the report at the end.
//  Api:       the API socket's thread: HTTP framing and body checks only.
enum class ThreadRole : uint8_t { Vcpu, EventLoop, Api };

[[nodiscard]] std::string_view to_string(ThreadRole role);
inline constexpr ThreadRole kAllThreadRoles[] = {ThreadRole::Vcpu, ThreadRole::EventLoop, ThreadRole::Api};

// A constant an argument may take, with its name for the docs.
struct NamedValue {
    std::string_view name;
    uint64_t value;
};

// One allowed system call. With `only_values` non-empty, argument
// `argument_index` must equal one of them (compared on its low 32 bits, the
// width of an ioctl request or fcntl command); anything else is a violation.
struct AllowedSyscall {
    AllowedSyscall(std::string_view call_name, int call_number, std::string_view reason, unsigned argument = 0,
                   std::vector<NamedValue> values = {})
        : name(call_name), number(call_number), why(reason), argument_index(argument), only_values(std::move(values)) {}

    std::string_view name;
    int number;
    std::string_view why;
    unsigned argument_index = 0;
    std::vector<NamedValue> only_values;
};

// What every thread needs (memory allocation, logging, futexes, exit), then
// what only `role` needs. A call in both is in the role's list only.
[[nodiscard]] const std::vector<AllowedSyscall>& common_syscalls();
[[nodiscard]] const std::vector<AllowedSyscall>& role_syscalls(ThreadRole role);

// What an ASan/UBSan build's runtime calls in any thread, on top of every
// list, in such builds only (KEEL_SANITIZER_BUILD); documented all the same.
[[nodiscard]] const std::vector<AllowedSyscall>& sanitizer_runtime_syscalls();

// common_syscalls() and role_syscalls(role) together (and in a sanitizer
// build sanitizer_runtime_syscalls()), the role's entry taking
// precedence over a common one of the same call.
[[nodiscard]] std::vector<AllowedSyscall> allowed_syscalls(ThreadRole role);

}  // namespace keel::security
