#pragma once
// A test-only hook (builds with KEEL_TEST_HOOKS): with
// KEEL_TEST_SECCOMP_PROBE=ROLE:allowed or ROLE:forbidden (a comma-separated
// list of them) in the environment,
// the first thread of ROLE makes, right after loading its filter, one call its
// list allows (and says so in the log) or one it does not (and keel dies of
// SIGSYS). The integration tests check both for every role, so the filters a
// running keel loads are the ones tested, not a copy.

#include "security/seccomp_policy.h"

namespace keel::security {

struct SeccompProbe {
    enum class Kind : uint8_t { None, Allowed, Forbidden };
    ThreadRole role = ThreadRole::Vcpu;
    Kind kind = Kind::None;
};

// Read before the filter is loaded (the environment is only memory, but the
// decision is best taken while anything may still be called).
[[nodiscard]] SeccompProbe prepare_seccomp_probe(ThreadRole role);

// KEEL_TEST_SECCOMP_LOG=1: every filter keel loads uses the log action, so a
// whole test run (scripts/seccomp-audit) lists the calls the lists lack
// instead of stopping at the first. Always false without KEEL_TEST_HOOKS.
[[nodiscard]] bool seccomp_audit_requested();
void run_seccomp_probe(const SeccompProbe& probe);

}  // namespace keel::security
