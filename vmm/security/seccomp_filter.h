#pragma once
// Loads a thread's seccomp allow-list (seccomp_policy.h) and reports a
// violation in words a user can send us.

#include <cstddef>
#include <optional>
#include <string_view>

#include "security/seccomp_policy.h"

namespace keel::security {

// --seccomp: Enforce is the default. Log lets every call through and has the
// kernel log the ones outside the lists (for auditing them); Off is for
// debugging keel only.
enum class SeccompMode : uint8_t { Enforce, Log, Off };

// What keel does without --seccomp: enforce. An ASan/UBSan build (a test
// build) logs instead: its runtime makes calls of its own that are not keel's,
// at a thread's exit (sigaltstack) and at keel's (LeakSanitizer's clone,
// ptrace); `--seccomp on` still enforces there, as the enforcement tests ask.
#ifdef KEEL_SANITIZER_BUILD
inline constexpr SeccompMode kDefaultSeccompMode = SeccompMode::Log;
#else
inline constexpr SeccompMode kDefaultSeccompMode = SeccompMode::Enforce;
#endif

[[nodiscard]] std::optional<SeccompMode> parse_seccomp_mode(std::string_view text);  // on, log, off
[[nodiscard]] std::string_view to_string(SeccompMode mode);

// A SIGSYS handler that writes one line naming the thread, its role and the
// call, then lets SIGSYS's default action end keel. Installed once, before
// any filter; it makes no system call outside the common list.
void install_violation_reporter();

// Filters the calling thread (not the others; threads it creates later
// inherit it) to `role`'s list, and sets no_new_privs. Nothing with Off.
// Throws keel::Error naming the role and the failing libseccomp step.
void install_thread_filter(ThreadRole role, SeccompMode mode);

// How many distinct system calls a role's filter lets through.
[[nodiscard]] std::size_t allowed_syscall_count(ThreadRole role);

}  // namespace keel::security
