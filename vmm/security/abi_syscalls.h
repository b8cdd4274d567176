#pragma once
// The system calls of the host's native ABI, as the kernel UAPI headers keel
// is built against define them (asm/unistd_64.h, read when CMake configures).
// The whole surface a process without a seccomp filter can reach: the
// denominator of every "N calls allowed" figure keel reports.

#include <optional>
#include <span>
#include <string_view>

namespace keel::security {

struct AbiSyscall {
    std::string_view name;
    int number;
};

// In number order.
[[nodiscard]] std::span<const AbiSyscall> abi_syscalls();
[[nodiscard]] std::optional<int> abi_syscall_number(std::string_view name);

}  // namespace keel::security
