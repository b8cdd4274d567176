// keel's per-thread seccomp filters on a real keel (docs/security.md): every
// thread of a running VM is filtered, and each role's list, as loaded by the
// binary under test, lets its own calls through and stops another role's.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "guest_boot.h"

using namespace keel::test;

namespace {

// KEEL_TEST_SECCOMP_PROBE for the keel this test starts, and only for it.
class ProbeRequest {
public:
    explicit ProbeRequest(const std::string& probes) { ::setenv("KEEL_TEST_SECCOMP_PROBE", probes.c_str(), 1); }
    ~ProbeRequest() { ::unsetenv("KEEL_TEST_SECCOMP_PROBE"); }
    ProbeRequest(const ProbeRequest&) = delete;
    ProbeRequest& operator=(const ProbeRequest&) = delete;
};

// A sanitizer build logs by default (vmm/security/seccomp_filter.h); the
// enforcement tests ask for `--seccomp on`, which every build honours.

#ifdef KEEL_SANITIZER_BUILD
constexpr const char* kWholeRunMode = "log";
#else
constexpr const char* kWholeRunMode = "on";
#endif

bool test_hooks_built() {
#ifdef KEEL_TEST_HOOKS
    return true;
#else
    WARN("keel was built without KEEL_TEST_HOOKS (a Release build): the seccomp probes are not tested");
    return false;
#endif
}

struct ThreadStatus {
    std::string name;
    std::string seccomp;
    std::string no_new_privs;
    bool kernel_worker = false;
};

// Threads the kernel runs inside keel's process for KVM (kvm-nx-lpage-recovery)
// and io_uring (iou-wrk-*): PF_USER_WORKER or PF_IO_WORKER in the task's flags.
// They never run keel's code or return to user space, so no filter applies.
bool is_kernel_worker(const std::filesystem::path& task) {
    std::ifstream in(task / "stat");
    const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto end_of_name = stat.rfind(')');
    if (end_of_name == std::string::npos) return false;
    std::istringstream fields(stat.substr(end_of_name + 1));
    std::string field;
    for (int i = 0; i < 7 && fields >> field; ++i) {
    }
    constexpr unsigned long kPfIoWorker = 0x10, kPfUserWorker = 0x4000;
    return (std::stoul(field) & (kPfIoWorker | kPfUserWorker)) != 0;
}

std::string status_field(const std::string& status, const std::string& field) {
    std::istringstream lines(status);
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with(field + ":")) {
            const auto value = line.find_first_not_of(" \t", field.size() + 1);
            return value == std::string::npos ? "" : line.substr(value);
        }
    }
    return "";
}

// Every thread of process `pid`, as /proc/<pid>/task/*/status tells.
std::map<std::string, ThreadStatus> thread_statuses(pid_t pid) {
    std::map<std::string, ThreadStatus> threads;
    std::error_code error;
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", error)) {
        std::ifstream in(task.path() / "status");
        const std::string status((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (status.empty()) continue;
        threads[task.path().filename().string()] = {status_field(status, "Name"), status_field(status, "Seccomp"),
                                                    status_field(status, "NoNewPrivs"), is_kernel_worker(task.path())};
    }
    return threads;
}

}  // namespace

TEST_CASE("every thread of a running keel is seccomp-filtered with no_new_privs, and each role's allowed probe returns",
          "[kvm]") {
    const auto guest = stock_guest();
    const auto dir = scratch_dir();
    const std::string disk = dir + "/disk.img";
    std::ofstream(disk).close();
    std::filesystem::resize_file(disk, 16 << 20);
    const ProbeRequest probes(test_hooks_built() ? "vcpu:allowed,event-loop:allowed,api:allowed" : "");

    std::mutex mutex;
    pid_t keel_pid = 0;
    std::map<std::string, ThreadStatus> threads;
    BootRequest request;
    request.kernel = guest.kernel;
    request.initrd = guest.initrd;
    request.cpus = 2;
    // Disk, entropy and console I/O run under the filters while the statuses are read.
    request.guest_script =
        "head -c 1048576 /dev/vda | md5sum\n"
        "head -c 1048576 /dev/zero > /dev/vda && sync\n"
        "head -c 64 /dev/hwrng | wc -c\n"
        "sleep 2\n";
    // Enforced whatever the build's default: the whole boot runs within the lists. Not in a
    // sanitizer build, whose runtime's leak check at exit clones and ptraces (docs/security.md).
    request.keel_args = {"--disk", "path=" + disk, "--rng", "--api-sock", dir + "/api.sock", "--seccomp", kWholeRunMode};
    request.options.started = [&](pid_t pid) {
        std::lock_guard lock(mutex);
        keel_pid = pid;
    };
    request.options.watch = [&](const std::string& out) {
        std::lock_guard lock(mutex);
        if (threads.empty() && keel_pid != 0 && marker(out, "boot-ok").has_value()) threads = thread_statuses(keel_pid);
    };
    const auto b = boot(request);
    require_clean_exit(b);
    CHECK(marker(b.result.out, "run-exit") == "0");
    INFO("stats: " << b.stats.dump());
    CHECK(b.stats["seccomp"]["mode"] == kWholeRunMode);
    for (const char* role : {"vcpu", "event-loop", "api"}) CHECK(b.stats["seccomp"]["allowed_syscalls"][role] > 20);

    std::lock_guard lock(mutex);
    std::ostringstream listing;
    for (const auto& [tid, thread] : threads) {
        listing << tid << " " << thread.name << ": Seccomp " << thread.seccomp << ", NoNewPrivs " << thread.no_new_privs
                << (thread.kernel_worker ? " (a kernel worker)" : "") << "\n";
    }
    INFO("keel's threads while the guest ran:\n" << listing.str());
    std::map<std::string, int> by_name;
    for (const auto& [tid, thread] : threads) {
        if (thread.kernel_worker) continue;
        ++by_name[thread.name];
        CHECK(thread.seccomp == "2");
        CHECK(thread.no_new_privs == "1");
    }
    CHECK(by_name["keel"] == 1);
    CHECK(by_name["keel-api"] == 1);
    CHECK(by_name["keel-vcpu0"] == 1);
    CHECK(by_name["keel-vcpu1"] == 1);

    if (test_hooks_built()) {
        INFO("keel stderr:\n" << b.result.err);
        CHECK(b.result.err.find("the vcpu thread's allowed call ioctl(KVM_RUN) returned -1 (errno 9)") !=
              std::string::npos);
        CHECK(b.result.err.find("the event-loop thread's allowed call openat returned") != std::string::npos);
        CHECK(b.result.err.find("the api thread's allowed call accept4 returned -1 (errno 9)") != std::string::npos);
    }
}

TEST_CASE("a vCPU or event-loop thread's seccomp violation ends keel with SIGSYS and a line naming both",
          "[kvm]") {
    if (!test_hooks_built()) return;
    const auto guest = stock_guest();
    const std::vector<std::pair<std::string, std::string>> cases{
        {"vcpu", "keel: thread 'keel-vcpu0' (vcpu) made system call 257 (openat) with arguments 0xffffff9c, "},
        {"event-loop", "keel: thread 'keel' (event-loop) made system call 288 (accept4) with arguments "
                       "0xffffffff, 0x0, 0x0, which its seccomp filter does not allow; keel stops."}};
    for (const auto& [role, report] : cases) {
        INFO("role " << role);
        const ProbeRequest probe(role + ":forbidden");
        BootRequest request;
        request.kernel = guest.kernel;
        request.initrd = guest.initrd;
        request.keel_args = {"--seccomp", "on"};
        const auto b = boot(request);
        INFO("keel stderr:\n" << b.result.err);
        CHECK_FALSE(b.result.timed_out);
        CHECK(b.result.term_signal == SIGSYS);
        CHECK(b.result.err.find(report) != std::string::npos);
        CHECK_FALSE(marker(b.result.out, "boot-ok").has_value());
    }
}

TEST_CASE("the API thread's seccomp violation ends keel with SIGSYS and a line naming it", "[cli]") {
    if (!test_hooks_built()) return;
    const auto dir = scratch_dir();
    const ProbeRequest probe("api:forbidden");
    ProcessOptions options;
    options.timeout = std::chrono::seconds(30);
    const auto r = run_process({keel_binary(), "--api-sock", dir + "/api.sock", "--seccomp", "on"}, options);
    INFO("keel stderr:\n" << r.err);
    CHECK_FALSE(r.timed_out);
    CHECK(r.term_signal == SIGSYS);
    // KVM_RUN (0xae80), the request a vCPU thread alone may make.
    CHECK(r.err.find("keel: thread 'keel-api' (api) made system call 16 (ioctl) with arguments 0xffffffff, "
                     "0xae80, 0x0, which its seccomp filter does not allow; keel stops.") != std::string::npos);
}

TEST_CASE("keel run refuses a seccomp mode other than on, log or off", "[cli]") {
    const auto r = run_process({keel_binary(), "run", "--kernel", "/nonexistent", "--seccomp", "strict"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--seccomp") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}
