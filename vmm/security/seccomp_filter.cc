#include "security/seccomp_filter.h"

#include <pthread.h>
#include <seccomp.h>
#include <sys/ucontext.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstring>
#include <string>

#include "common/error.h"
#include "security/seccomp_probe.h"

namespace keel::security {

std::optional<SeccompMode> parse_seccomp_mode(std::string_view text) {
    if (text == "on") return SeccompMode::Enforce;
    if (text == "log") return SeccompMode::Log;
    if (text == "off") return SeccompMode::Off;
    return std::nullopt;
}

std::string_view to_string(SeccompMode mode) {
    switch (mode) {
        case SeccompMode::Enforce:
            return "on";
        case SeccompMode::Log:
            return "log";
        case SeccompMode::Off:
            return "off";
    }
    return "off";
}

namespace {

// What the SIGSYS handler needs, prepared beforehand: it may not allocate
// (the trapped call may have come from inside the allocator) and may only
// make calls every filter allows.
constexpr int kKnownSyscalls = 512;
std::array<char[32], kKnownSyscalls> g_syscall_names{};
thread_local char t_thread_name[16] = "keel";
thread_local const char* t_role_name = "none";

class LineBuffer {
public:
    void add(const char* text) {
        while (*text != '\0' && m_length < sizeof m_text) m_text[m_length++] = *text++;
    }
    void add(long number) {
        if (number < 0) add("-");
        add_digits(
            number < 0 ? 0ULL - static_cast<unsigned long long>(number) : static_cast<unsigned long long>(number), 10);
    }
    void add_hex(unsigned long long number) {
        add("0x");
        add_digits(number, 16);
    }
    void write_to(int fd) const { (void)!::write(fd, m_text, m_length); }

private:
    void add_digits(unsigned long long number, unsigned base) {
        char digits[24];
        size_t count = 0;
        do {
            digits[count++] = "0123456789abcdef"[number % base];
            number /= base;
        } while (number != 0 && count < sizeof digits);
        while (count > 0 && m_length < sizeof m_text) m_text[m_length++] = digits[--count];
    }

    char m_text[512];
    size_t m_length = 0;
};

void report_violation(int, siginfo_t* info, void* context) {
    const int number = info->si_syscall;
    LineBuffer line;
    line.add("keel: thread '");
    line.add(t_thread_name);
    line.add("' (");
    line.add(t_role_name);
    line.add(") made system call ");
    line.add(static_cast<long>(number));
    if (number >= 0 && number < kKnownSyscalls && g_syscall_names[static_cast<size_t>(number)][0] != '\0') {
        line.add(" (");
        line.add(g_syscall_names[static_cast<size_t>(number)]);
        line.add(")");
    }
    // The first three arguments (an ioctl's request is the second), from the
    // registers the call was made with.
    const auto& registers = static_cast<const ucontext_t*>(context)->uc_mcontext.gregs;
    line.add(" with arguments ");
    line.add_hex(static_cast<unsigned long long>(registers[REG_RDI]));
    line.add(", ");
    line.add_hex(static_cast<unsigned long long>(registers[REG_RSI]));
    line.add(", ");
    line.add_hex(static_cast<unsigned long long>(registers[REG_RDX]));
    line.add(
        ", which its seccomp filter does not allow; keel stops. Please report this line "
        "(--seccomp log lists every such call without stopping)\n");
    line.write_to(STDERR_FILENO);
    // SA_RESETHAND put the default action back: SIGSYS, raised again, ends
    // keel as soon as this handler returns and unblocks it.
    (void)raise(SIGSYS);
}

}  // namespace

void install_violation_reporter() {
    for (int number = 0; number < kKnownSyscalls; ++number) {
        char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, number);
        if (name == nullptr) continue;
        std::strncpy(g_syscall_names[static_cast<size_t>(number)], name, sizeof g_syscall_names[0] - 1);
        std::free(name);
    }
    struct sigaction action {};
    action.sa_sigaction = report_violation;
    action.sa_flags = static_cast<int>(SA_SIGINFO | SA_RESETHAND);
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSYS, &action, nullptr) != 0) throw_errno("cannot install the seccomp violation reporter (SIGSYS)");
}

namespace {

class FilterContext {
public:
    FilterContext(ThreadRole role, SeccompMode mode)
        : m_role(role), m_context(seccomp_init(mode == SeccompMode::Log ? SCMP_ACT_LOG : SCMP_ACT_TRAP)) {
        if (m_context == nullptr) fail("seccomp_init", -ENOMEM);
        // Only the calling thread: each role loads its own list.
        check("seccomp_attr_set(TSYNC)", seccomp_attr_set(m_context, SCMP_FLTATR_CTL_TSYNC, 0));
        check("seccomp_attr_set(NNP)", seccomp_attr_set(m_context, SCMP_FLTATR_CTL_NNP, 1));
    }
    ~FilterContext() { seccomp_release(m_context); }
    FilterContext(const FilterContext&) = delete;
    FilterContext& operator=(const FilterContext&) = delete;

    void allow(const AllowedSyscall& call) {
        if (call.only_values.empty()) {
            check_rule(call, seccomp_rule_add(m_context, SCMP_ACT_ALLOW, call.number, 0));
            return;
        }
        for (const auto& value : call.only_values) {
            const scmp_arg_cmp compare{call.argument_index, SCMP_CMP_MASKED_EQ, 0xffffffffULL, value.value};
            check_rule(call, seccomp_rule_add_array(m_context, SCMP_ACT_ALLOW, call.number, 1, &compare));
        }
    }
    void load() { check("seccomp_load", seccomp_load(m_context)); }

private:
    void check(const std::string& step, int result) const {
        if (result < 0) fail(step, result);
    }
    // The step's name is only built when it failed: a thread adds dozens of rules.
    void check_rule(const AllowedSyscall& call, int result) const {
        if (result < 0) fail("seccomp_rule_add(" + std::string(call.name) + ")", result);
    }
    [[noreturn]] void fail(const std::string& step, int negative_errno) const {
        throw Error("cannot install the seccomp filter of the " + std::string(to_string(m_role)) + " thread: " + step +
                    ": " + std::strerror(-negative_errno));
    }

    ThreadRole m_role;
    scmp_filter_ctx m_context;
};

}  // namespace

void install_thread_filter(ThreadRole role, SeccompMode mode) {
    if (mode == SeccompMode::Off) return;
    pthread_getname_np(pthread_self(), t_thread_name, sizeof t_thread_name);
    t_role_name = to_string(role).data();
    const auto probe = prepare_seccomp_probe(role);
    FilterContext filter(role, seccomp_audit_requested() ? SeccompMode::Log : mode);
    for (const auto& call : allowed_syscalls(role)) filter.allow(call);
    filter.load();
    run_seccomp_probe(probe);
}

std::size_t allowed_syscall_count(ThreadRole role) {
    return allowed_syscalls(role).size();
}

}  // namespace keel::security
