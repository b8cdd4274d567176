#include "security/seccomp_policy.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <algorithm>

#include "common/kvm_uapi.h"  // never <linux/kvm.h>: its C++ ioctl numbers are wrong

namespace keel::security {

// The call's name and number in one go, so the two cannot disagree.
#define KEEL_SYSCALL(call) #call, SCMP_SYS(call)
#define KEEL_NAMED(constant) \
    NamedValue {             \
#constant, constant  \
    }

std::string_view to_string(ThreadRole role) {
    switch (role) {
        case ThreadRole::Vcpu:
            return "vcpu";
        case ThreadRole::EventLoop:
            return "event-loop";
        case ThreadRole::Api:
            return "api";
    }
    return "unknown";
}

namespace {

// ioctls a vCPU thread makes between KVM_RUNs; the event loop makes the same
// ones when a device it drives raises an interrupt or is reset by the API.
std::vector<NamedValue> vcpu_ioctls() {
    return {
        KEEL_NAMED(KVM_RUN),
        KEEL_NAMED(KVM_KVMCLOCK_CTRL),
        KEEL_NAMED(KVM_GET_REGS),
        KEEL_NAMED(KVM_GET_SREGS),
        KEEL_NAMED(KVM_GET_STATS_FD),
        KEEL_NAMED(KVM_IRQ_LINE),
        KEEL_NAMED(KVM_SET_GSI_ROUTING),
        KEEL_NAMED(KVM_IRQFD),
        KEEL_NAMED(KVM_IOEVENTFD),
        KEEL_NAMED(TUNSETOFFLOAD),
        KEEL_NAMED(TUNSETQUEUE),
    };
}

std::vector<NamedValue> event_loop_ioctls() {
    auto requests = vcpu_ioctls();
    // KVM_RUN is a vCPU's alone.
    std::erase_if(requests, [](const NamedValue& request) { return request.value == KVM_RUN; });
    requests.insert(requests.end(), {
                                        KEEL_NAMED(TCGETS),
                                        KEEL_NAMED(TCSETS),
                                        KEEL_NAMED(TCSETSW),
                                        KEEL_NAMED(BLKGETSIZE64),
                                    });
    return requests;
}

std::vector<AllowedSyscall> make_common() {
    return {
        {KEEL_SYSCALL(read), "eventfd counters that wake a thread"},
        {KEEL_SYSCALL(write), "log lines to stderr, eventfd signals to another thread or to KVM"},
        {KEEL_SYSCALL(futex), "mutexes and condition variables (pause gate, API mailbox, logger)"},
        {KEEL_SYSCALL(mmap), "the memory allocator"},
        {KEEL_SYSCALL(munmap), "the memory allocator"},
        {KEEL_SYSCALL(mremap), "the memory allocator growing a large block"},
        {KEEL_SYSCALL(brk), "the memory allocator (main arena)"},
        {KEEL_SYSCALL(madvise), "the memory allocator returning freed pages"},
        {KEEL_SYSCALL(mprotect),
         "the memory allocator making reserved arena pages usable; never executable",
         2,
         {KEEL_NAMED(PROT_NONE), NamedValue{"PROT_READ|PROT_WRITE", PROT_READ | PROT_WRITE}}},
        {KEEL_SYSCALL(rt_sigprocmask), "glibc blocks signals while a thread starts or exits"},
        {KEEL_SYSCALL(rt_sigreturn), "return from a signal handler (the vCPU kick, the violation report)"},
        {KEEL_SYSCALL(clock_gettime), "timestamps the vDSO cannot answer"},
        {KEEL_SYSCALL(gettid), "log lines and the violation report name the thread"},
        {KEEL_SYSCALL(getpid), "signals are sent to keel's own threads"},
        {KEEL_SYSCALL(tgkill), "a signal to one thread: the vCPU kick, abort(), the violation report"},
        {KEEL_SYSCALL(close), "file descriptors closed when a device or connection is done with them"},
        {KEEL_SYSCALL(restart_syscall), "an interrupted wait resumes"},
        {KEEL_SYSCALL(sched_yield), "a waiting thread gives way"},
        {KEEL_SYSCALL(sched_getaffinity), "the memory allocator sizes its arenas by the CPUs keel may use"},
        {KEEL_SYSCALL(exit), "a thread ends"},
        {KEEL_SYSCALL(exit_group), "keel ends"},
    };
}

std::vector<AllowedSyscall> make_sanitizer_runtime() {
    return {
        {KEEL_SYSCALL(sigaltstack), "ASan checks and sets each thread's signal stack"},
        {KEEL_SYSCALL(pipe2), "UBSan's vptr check tests that a vtable is readable by writing it into a pipe"},
    };
}

std::vector<AllowedSyscall> make_vcpu() {
    return {
        {KEEL_SYSCALL(ioctl),
         "KVM_RUN; interrupts and queue notifications the guest sets up (IRQ line, MSI routes, irqfds, "
         "ioeventfds); the NIC's offloads and queue pairs the driver negotiated; pause (KVMCLOCK_CTRL); "
         "registers and KVM statistics when it stops",
         1, vcpu_ioctls()},
        {KEEL_SYSCALL(eventfd2), "an irqfd for an MSI vector or an ioeventfd for a queue the guest enables"},
        {KEEL_SYSCALL(epoll_ctl), "a queue the guest enables is added to (or removed from) the event loop"},
        {KEEL_SYSCALL(pread64), "the vCPU's KVM statistics, read when it stops"},
    };
}

std::vector<AllowedSyscall> make_event_loop() {
    return {
        {KEEL_SYSCALL(ioctl),
         "interrupts of devices served here; KVM stats fds for the report at exit; the terminal restored; "
         "a disk's size when the API swaps its file",
         1, event_loop_ioctls()},
        {KEEL_SYSCALL(epoll_wait), "the event loop waits for device, signal and API events"},
        {KEEL_SYSCALL(epoll_pwait), "the event loop waits for device, signal and API events"},
        {KEEL_SYSCALL(epoll_ctl), "devices and the API add and remove their file descriptors"},
        {KEEL_SYSCALL(eventfd2), "an irqfd or ioeventfd for a device the API resets or changes"},
        {KEEL_SYSCALL(readv), "frames from a TAP device"},
        {KEEL_SYSCALL(writev), "frames to a TAP device"},
        {KEEL_SYSCALL(pread64), "disk reads (synchronous engine); KVM stats fds at exit"},
        {KEEL_SYSCALL(pwrite64), "disk writes of zeroes where fallocate cannot"},
        {KEEL_SYSCALL(preadv), "disk reads (synchronous engine)"},
        {KEEL_SYSCALL(pwritev), "disk writes (synchronous engine)"},
        {KEEL_SYSCALL(fdatasync), "a guest's flush request (synchronous engine)"},
        {KEEL_SYSCALL(fallocate), "a guest's discard or write-zeroes request"},
        {KEEL_SYSCALL(io_uring_enter), "disk requests submitted and reaped (io_uring engine)"},
        {KEEL_SYSCALL(timerfd_settime), "the NIC's transmit rate timer"},
        {KEEL_SYSCALL(openat),
         "files the API names while the guest runs (a drive's new file, the log and metrics files), "
         "the statistics file and /proc/self/smaps at exit"},
        {KEEL_SYSCALL(newfstatat), "a drive's new file checked and sized; stdio buffers"},
        {KEEL_SYSCALL(fstat), "a drive's new file sized; stdio buffers"},
        {KEEL_SYSCALL(lseek), "stdio on the log, metrics and statistics files"},
        {KEEL_SYSCALL(fcntl), "a drive's new file locked the way every disk is", 1, {KEEL_NAMED(F_OFD_SETLK)}},
        {KEEL_SYSCALL(unlink), "the API socket removed at exit"},
        {KEEL_SYSCALL(getrandom), "the entropy device's bytes"},
        {KEEL_SYSCALL(readlink), "the memory report at exit finds keel's own binary (/proc/self/exe)"},
    };
}

std::vector<AllowedSyscall> make_api() {
    return {
        {KEEL_SYSCALL(poll), "wait for connections, requests and the main thread's answers"},
        {KEEL_SYSCALL(accept4), "a client connects to the API socket"},
        {KEEL_SYSCALL(recvfrom), "a request's bytes"},
        {KEEL_SYSCALL(sendto), "a response's bytes"},
    };
}

}  // namespace

const std::vector<AllowedSyscall>& common_syscalls() {
    static const auto calls = make_common();
    return calls;
}

const std::vector<AllowedSyscall>& sanitizer_runtime_syscalls() {
    static const auto calls = make_sanitizer_runtime();
    return calls;
}

const std::vector<AllowedSyscall>& role_syscalls(ThreadRole role) {
    static const auto vcpu = make_vcpu();
    static const auto event_loop = make_event_loop();
    static const auto api = make_api();
    switch (role) {
        case ThreadRole::Vcpu:
            return vcpu;
        case ThreadRole::EventLoop:
            return event_loop;
        case ThreadRole::Api:
            return api;
    }
    return api;
}

std::vector<AllowedSyscall> allowed_syscalls(ThreadRole role) {
    const auto& own = role_syscalls(role);
    std::vector<AllowedSyscall> calls = own;
    const auto add_unless_listed = [&](const std::vector<AllowedSyscall>& more) {
        for (const auto& call : more) {
            const bool listed = std::any_of(calls.begin(), calls.end(),
                                            [&](const AllowedSyscall& mine) { return mine.number == call.number; });
            if (!listed) calls.push_back(call);
        }
    };
    add_unless_listed(common_syscalls());
#ifdef KEEL_SANITIZER_BUILD
    add_unless_listed(sanitizer_runtime_syscalls());
#endif
    return calls;
}

}  // namespace keel::security
