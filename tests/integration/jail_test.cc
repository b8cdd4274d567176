// keel jail end to end (needs root; the boots need /dev/kvm, so scripts/test
// runs them inside scripts/kvm-sandbox elsewhere). A jailed keel boots the
// stock guest with a disk and a NIC on a TAP in a test network namespace;
// while it runs, the host checks what the jail promised: keel's uid and gid,
// its root (the jail's root/, with the host's tree out of reach), its cgroup
// and the limit written there. Then: a pids.max too small for keel's vCPU
// threads stops keel with one line, and a failing step names itself.
#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>

#include "guest_boot.h"
#include "net_host.h"

using namespace keel::test;

namespace {

constexpr uid_t kJailUid = 4711;
constexpr gid_t kJailGid = 4712;
constexpr const char* kCgroupRoot = "/sys/fs/cgroup";
constexpr const char* kHostAddress = "169.254.110.1";
constexpr const char* kGuestAddress = "169.254.110.2";
constexpr const char* kMemoryMax = "805306368";  // 768 MiB: room for 256 MiB of guest RAM and keel

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// "Uid:\t4711\t4711\t4711\t4711" -> "4711 4711 4711 4711"
std::string status_ids(const std::string& status, const std::string& key) {
    std::istringstream in(status);
    for (std::string line; std::getline(in, line);) {
        if (!line.starts_with(key + ":")) continue;
        std::istringstream fields(line.substr(key.size() + 1));
        std::string result;
        for (std::string field; fields >> field;) result += (result.empty() ? "" : " ") + field;
        return result;
    }
    return "(no " + key + " line)";
}

bool same_file(const std::string& a, const std::string& b) {
    struct stat sa {}, sb {};
    return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

// False (with the reason as a warning) when the jail cannot be tested here.
bool can_jail() {
    if (!can_create_net_namespaces()) {
        WARN("keel jail tests need root (namespaces, mknod, cgroups) and iproute2: not tested");
        return false;
    }
    if (::access((std::string(kCgroupRoot) + "/cgroup.controllers").c_str(), R_OK) != 0) {
        WARN("no cgroup v2 hierarchy at /sys/fs/cgroup: keel jail's cgroup not tested");
        return false;
    }
    return true;
}

// The VM's jail directory and cgroup go when the test ends (keel jail leaves
// them, like Firecracker's jailer: they name a VM that may be inspected).
// Also before a retried boot, which reuses the id.
struct JailLeftovers {
    JailLeftovers(const std::string& chroot_base, const std::string& id)
        : jail_dir(chroot_base + "/keel/" + id), cgroup(std::string(kCgroupRoot) + "/keel/" + id) {}
    JailLeftovers(const JailLeftovers&) = delete;
    JailLeftovers& operator=(const JailLeftovers&) = delete;
    ~JailLeftovers() { clear(); }

    void clear() const {
        std::error_code ignored;
        std::filesystem::remove_all(jail_dir, ignored);
        ::rmdir(cgroup.c_str());
    }
    // keel's '/'.
    [[nodiscard]] std::string root() const { return jail_dir + "/root"; }

    const std::string jail_dir;
    const std::string cgroup;
};

std::string unique_id(const std::string& what) { return "t" + std::to_string(::getpid()) + "-" + what; }

// A jailed boot and what the host saw of it while it ran.
template <class Seen>
struct JailedBoot {
    Boot boot;
    std::shared_ptr<Seen> seen;
};

// Runs `keel jail ...` (argv) with `host_side` watching its console; `seen->started_pid`
// gets the pid of the process started (keel jail, which becomes keel or, with
// --new-pid-ns, its parent). keel writes its statistics inside the jail.
template <class Seen>
JailedBoot<Seen> run_jailed_boot(const std::vector<std::string>& argv, const std::string& jail_stats_path,
                                 HostAction& host_side, std::shared_ptr<Seen> seen) {
    ProcessOptions options;
    options.timeout = std::chrono::seconds(300);
    options.started = [seen](pid_t pid) {
        std::lock_guard lock(seen->mutex);
        seen->started_pid = pid;
    };
    options.watch = host_side.watcher();
    Boot b = run_keel_boot(argv, jail_stats_path, options);
    host_side.stop();
    return {std::move(b), std::move(seen)};
}

// A sanitizer build's keel is linked dynamically, and keel jail refuses it (the
// jail holds no libraries): there the boots are not possible, and what is
// tested is that refusal, one line naming the step. True when that was done.
bool checked_dynamic_keel_refusal() {
#ifdef KEEL_SANITIZER_BUILD
    const std::string base = scratch_dir();
    const auto r = run_process({keel_binary(), "jail", "--id", unique_id("dyn"), "--uid", std::to_string(kJailUid),
                                "--gid", std::to_string(kJailGid), "--chroot-base", base, "--", "--kernel",
                                stock_guest().kernel});
    INFO("keel stderr:\n" << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.starts_with("error: jail: "));
    CHECK(r.err.find("is dynamically linked and its libraries are not in the jail") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    std::error_code ignored;
    std::filesystem::remove_all(base, ignored);
    WARN("a sanitizer build's keel is linked dynamically and cannot be jailed: its refusal was tested instead");
    return true;
#else
    return false;
#endif
}

// What the host saw of the running, jailed keel.
struct Observed {
    std::mutex mutex;
    bool ran = false;
    std::string uids, gids;
    bool root_is_jail = false;
    int outside_errno = 0;  // stat of a host path through /proc/<pid>/root
    std::string memory_max;
    std::string procs;
    pid_t started_pid = 0;
    ProcessResult sent;
};

// The guest waits for a message from the host over its NIC, and says what arrived.
std::string guest_script() {
    return R"SH(
t() { echo "KEEL-TEST $1=$2"; }
timeout 240 nc -l -p 5000 -e sh -c 'cat >/tmp/in' & L=$!
i=0; until netstat -ltn | grep -q ':5000 ' || [ $i -gt 99 ]; do sleep 0.1; i=$((i+1)); done
t jail-ready 5000
wait $L
t jail-message "$(cat /tmp/in)"
)SH";
}

}  // namespace

TEST_CASE("a jailed keel boots with a disk and a NIC, as the given uid, in its chroot and cgroup", "[kvm]") {
    if (!can_jail() || checked_dynamic_keel_refusal()) return;
    const auto guest = stock_guest();
    const ScratchDir dir;
    const std::string disk = dir.path + "/disk.img";
    std::ofstream(disk).close();
    REQUIRE(::truncate(disk.c_str(), 8 * 1024 * 1024) == 0);
    // The jailed keel opens it as kJailUid; the kernel and initrd need only be world-readable.
    REQUIRE(::chown(disk.c_str(), kJailUid, kJailGid) == 0);
    const std::string message_file = dir.path + "/message";
    std::ofstream(message_file) << "hello-from-the-host\n";

    const auto id = unique_id("boot");
    const JailLeftovers leftovers(dir.path + "/jails", id);
    const std::string jail_root = leftovers.root();

    const auto attempt = [&] {
        leftovers.clear();
        const NetNamespace ns;
        ns.add_tap("jtap0", std::string(kHostAddress) + "/24");
        auto observed = std::make_shared<Observed>();
        HostAction host_side("KEEL-TEST jail-ready=", [&, observed](std::stop_token stop) {
            pid_t pid = 0;
            {
                std::lock_guard lock(observed->mutex);
                pid = observed->started_pid;
                observed->ran = true;
                const auto proc = "/proc/" + std::to_string(pid);
                const auto status = read_text(proc + "/status");
                observed->uids = status_ids(status, "Uid");
                observed->gids = status_ids(status, "Gid");
                observed->root_is_jail = same_file(proc + "/root", jail_root);
                struct stat info {};
                observed->outside_errno =
                    ::stat((proc + "/root" + KEEL_SOURCE_DIR).c_str(), &info) == 0 ? 0 : errno;
                observed->memory_max = read_text(leftovers.cgroup + "/memory.max");
                observed->procs = read_text(leftovers.cgroup + "/cgroup.procs");
            }
            ProcessOptions options;
            options.timeout = std::chrono::seconds(120);
            options.kill_when = stop_with(stop);
            auto sent = ns.shell(std::string("for i in $(seq 30); do busybox nc ") + kGuestAddress + " 5000 <'" +
                                     message_file + "' && exit 0; sleep 1; done; exit 1",
                                 options);
            std::lock_guard lock(observed->mutex);
            observed->sent = std::move(sent);
        });
        const std::string cmdline = "console=ttyS0 reboot=k panic=-1 keel.net=eth0=" + std::string(kGuestAddress) +
                                    "/24 keel.run=" + base64(guest_script());
        const std::vector<std::string> argv{keel_binary(),
                                            "jail",
                                            "--id",
                                            id,
                                            "--uid",
                                            std::to_string(kJailUid),
                                            "--gid",
                                            std::to_string(kJailGid),
                                            "--chroot-base",
                                            dir.path + "/jails",
                                            "--cgroup",
                                            std::string("memory.max=") + kMemoryMax,
                                            "--cgroup",
                                            "pids.max=64",
                                            "--netns",
                                            "/var/run/netns/" + ns.name(),
                                            "--",
                                            "--kernel",
                                            guest.kernel,
                                            "--initrd",
                                            guest.initrd,
                                            "--memory",
                                            "256M",
                                            "--cmdline",
                                            cmdline,
                                            "--disk",
                                            "path=" + disk + ",serial=jaildisk",
                                            "--net",
                                            "tap=jtap0,id=lan0",
                                            "--stats-json",
                                            "/stats.json"};
        // /stats.json in the jail is root/stats.json here.
        return run_jailed_boot(argv, jail_root + "/stats.json", host_side, observed);
    };
    const auto run = retry_once_after_emulated_host_failure("jailed keel boot", attempt);
    const Boot& b = run.boot;
    const auto& observed = run.seen;
    INFO("guest console:\n" << b.result.out);
    INFO("keel stderr:\n" << b.result.err);
    INFO("host send: exit " << observed->sent.exit_code << " " << observed->sent.err);
    require_clean_exit(b);
    // The guest got the disk (8 MiB = 16384 sectors, writable, its serial) and the NIC.
    CHECK(marker(b.result.out, "disks") == "vda:16384:0:jaildisk");
    const auto nics = marker(b.result.out, "nics");
    REQUIRE(nics.has_value());
    CHECK(nics->ends_with(":up:" + std::string(kGuestAddress) + "/24"));
    CHECK(marker(b.result.out, "jail-message") == "hello-from-the-host");
    CHECK(marker(b.result.out, "run-exit") == "0");

    std::lock_guard lock(observed->mutex);
    REQUIRE(observed->ran);
    const auto uid = std::to_string(kJailUid);
    const auto gid = std::to_string(kJailGid);
    CHECK(observed->uids == uid + " " + uid + " " + uid + " " + uid);
    CHECK(observed->gids == gid + " " + gid + " " + gid + " " + gid);
    CHECK(observed->root_is_jail);
    CHECK(observed->outside_errno == ENOENT);
    CHECK(observed->memory_max == std::string(kMemoryMax) + "\n");
    // keel's pid is there; so is KVM's per-VM worker (kvm-nx-lpage-recovery), a kernel thread
    // that joins the cgroup of the process creating the VM.
    CHECK(("\n" + observed->procs).find("\n" + std::to_string(observed->started_pid) + "\n") != std::string::npos);
    // What keel left in its jail: the device nodes it was given, owned by its uid.
    struct stat kvm {};
    REQUIRE(::stat((jail_root + "/dev/kvm").c_str(), &kvm) == 0);
    CHECK(S_ISCHR(kvm.st_mode));
    CHECK(kvm.st_uid == kJailUid);
    CHECK(std::filesystem::exists(jail_root + "/dev/net/tun"));
    CHECK(b.stats.value("stop_reason", std::string()) != "");
}

// What the host saw of keel inside its own pid namespace.
struct PidNamespaceSeen {
    std::mutex mutex;
    pid_t started_pid = 0;  // keel jail, which stays outside the namespace as keel's parent
    pid_t keel = 0;    // its child, keel
    std::string nspid;
    std::string open_files_limit;
    std::string uids;
    int kill_result = -1;
};

// "Max open files            512                  512                  files" -> "512 512"
std::string open_files_limit(const std::string& limits) {
    std::istringstream in(limits);
    for (std::string line; std::getline(in, line);) {
        if (!line.starts_with("Max open files")) continue;
        std::istringstream fields(line.substr(std::string("Max open files").size()));
        std::string soft, hard;
        fields >> soft >> hard;
        return soft + " " + hard;
    }
    return "(no Max open files line)";
}

TEST_CASE("keel jail --new-pid-ns: keel is pid 1 of its namespace with the rlimits asked, and the parent outside "
          "forwards SIGTERM and returns keel's status",
          "[kvm]") {
    if (!can_jail() || checked_dynamic_keel_refusal()) return;
    const auto guest = stock_guest();
    const ScratchDir dir;
    const auto id = unique_id("pidns");
    const JailLeftovers leftovers(dir.path + "/jails", id);
    const auto attempt = [&] {
        leftovers.clear();
        auto seen = std::make_shared<PidNamespaceSeen>();
        // The guest says it runs, then waits: keel stops only when the host's SIGTERM arrives.
        HostAction host_side("KEEL-TEST pidns-ready=", [seen](std::stop_token) {
            std::lock_guard lock(seen->mutex);
            const auto parent = std::to_string(seen->started_pid);
            std::istringstream children(read_text("/proc/" + parent + "/task/" + parent + "/children"));
            children >> seen->keel;
            const auto proc = "/proc/" + std::to_string(seen->keel);
            const auto status = read_text(proc + "/status");
            seen->nspid = status_ids(status, "NSpid");
            seen->uids = status_ids(status, "Uid");
            seen->open_files_limit = open_files_limit(read_text(proc + "/limits"));
            seen->kill_result = ::kill(seen->started_pid, SIGTERM);
        });
        const std::string cmdline = "console=ttyS0 reboot=k panic=-1 keel.run=" +
                                    base64("echo KEEL-TEST pidns-ready=1\nsleep 240\n");
        const std::vector<std::string> argv{keel_binary(), "jail", "--id", id, "--uid", std::to_string(kJailUid),
                                            "--gid", std::to_string(kJailGid), "--chroot-base", dir.path + "/jails",
                                            "--new-pid-ns", "--resource-limit", "no-file=512", "--", "--kernel",
                                            guest.kernel, "--initrd", guest.initrd, "--memory", "256M", "--cmdline",
                                            cmdline, "--stats-json", "/stats.json"};
        return run_jailed_boot(argv, leftovers.root() + "/stats.json", host_side, seen);
    };
    const auto run = retry_once_after_emulated_host_failure("jailed keel in a pid namespace", attempt);
    const Boot& b = run.boot;
    const auto& seen = run.seen;
    INFO("guest console:\n" << b.result.out);
    INFO("keel stderr:\n" << b.result.err);
    std::lock_guard lock(seen->mutex);
    REQUIRE(seen->keel > 0);
    CHECK(seen->kill_result == 0);
    // keel's own pid as the host numbers it, then 1 in its namespace.
    CHECK(seen->nspid == std::to_string(seen->keel) + " 1");
    const auto uid = std::to_string(kJailUid);
    CHECK(seen->uids == uid + " " + uid + " " + uid + " " + uid);
    CHECK(seen->open_files_limit == "512 512");
    // keel stopped on the forwarded SIGTERM (128 + 15, its status for a termination
    // signal), and the parent outside exited with that status.
    CHECK_FALSE(b.result.timed_out);
    CHECK(b.result.exit_code == 143);
    CHECK(b.stats.value("stop_reason", std::string()) == "signal");
}

TEST_CASE("a jailed keel whose pids.max leaves no room for its vCPU threads stops with one line", "[kvm]") {
    if (!can_jail() || checked_dynamic_keel_refusal()) return;
    const auto guest = stock_guest();
    const ScratchDir dir;
    const auto id = unique_id("pids");
    const JailLeftovers leftovers(dir.path + "/jails", id);
    ProcessOptions options;
    options.timeout = std::chrono::seconds(300);
    const auto r = run_process({keel_binary(), "jail", "--id", id, "--uid", std::to_string(kJailUid), "--gid",
                                std::to_string(kJailGid), "--chroot-base", dir.path + "/jails", "--cgroup",
                                "pids.max=2", "--", "--kernel", guest.kernel, "--initrd", guest.initrd, "--cpus", "2"},
                               options);
    INFO("keel stderr:\n" << r.err);
    CHECK_FALSE(r.timed_out);
    CHECK(r.exit_code == 1);
    CHECK(r.err.starts_with("error: cannot create the thread of vCPU "));
    CHECK(r.err.find(": Resource temporarily unavailable (") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.out.find("KEEL-TEST boot-ok") == std::string::npos);
    CHECK(read_text(leftovers.cgroup + "/pids.max") == "2\n");
}

TEST_CASE("keel jail: a failing step is one line naming it, and leaves nothing behind", "[cli]") {
    const ScratchDir dir;
    const auto r = run_process({keel_binary(), "jail", "--id", "vm1", "--uid", "4711", "--gid", "4712",
                                "--chroot-base", dir.path, "--netns", "/nonexistent", "--", "--kernel",
                                "/nonexistent-kernel"});
    CHECK(r.exit_code == 1);
    CHECK(r.err == "error: jail: netns: cannot open '/nonexistent': No such file or directory\n");
    CHECK_FALSE(std::filesystem::exists(dir.path + "/keel"));
    const auto no_kernel = run_process({keel_binary(), "jail", "--id", "vm1", "--uid", "1", "--gid", "1", "--", "--cpus",
                                    "2"});
    CHECK(no_kernel.exit_code == 2);
    CHECK(no_kernel.err ==
          "error: jail: keel run arguments: --kernel, --config-file or --api-sock is required\n");
}
