// The legacy workload image end to end (needs /dev/kvm, root and cgroup v2;
// scripts/test runs it inside scripts/kvm-sandbox elsewhere): Debian 12 with
// sysvinit and lighttpd on an ext4 root file system
// (guest-images/build-legacy-image), booted with Debian's stock kernel from a
// copy of the cached image by a jailed keel (keel jail: its own uid/gid, a
// pivot_root'ed jail, a cgroup with memory and task limits, the test's network
// namespace; keel's seccomp filters enforced, the default), with a NIC on a
// TAP in that namespace. The host fetches the page the image serves, asks the
// guest to shut down with the API's SendCtrlAltDel (through the socket keel
// made inside its jail), and checks that keel exits 0 and the image is clean.
// A sanitizer build's keel is linked dynamically, which keel jail refuses (its
// jail holds no libraries): there the same VM boots unjailed (keel run).
#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "api_client.h"
#include "guest_boot.h"
#include "net_host.h"

using namespace keel::test;
using namespace std::chrono_literals;

namespace {

// Not the image's default address (169.254.100.2/30): the test also checks
// that keel.net= on the command line overrides it.
constexpr const char* kHostCidr = "169.254.100.5/30";
constexpr const char* kGuestAddress = "169.254.100.6";
constexpr const char* kTap = "ltap0";

struct LegacyImage {
    std::string kernel;
    std::string initrd;
    std::string rootfs;       // the cached image: copied, never booted
    std::string page_marker;  // a line the served page carries
};

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// $KEEL_LEGACY_IMAGE_DIR (scripts/test exports it), else the cached image of
// the current recipe; empty when it was never built.
std::string legacy_image_dir() {
    std::string dir = env_or("KEEL_LEGACY_IMAGE_DIR", "");
    if (!dir.empty()) return dir;
    const auto r = run_process({std::string(KEEL_SOURCE_DIR) + "/guest-images/build-legacy-image", "--if-cached"});
    return r.exit_code == 0 ? trim(r.out) : "";
}

std::optional<LegacyImage> legacy_image() {
    const auto dir = legacy_image_dir();
    if (dir.empty()) return std::nullopt;
    LegacyImage image{dir + "/vmlinuz", dir + "/initrd.img", dir + "/rootfs.ext4", ""};
    std::ifstream marker(dir + "/page-marker");
    std::getline(marker, image.page_marker);
    for (const auto& file : {image.kernel, image.initrd, image.rootfs}) {
        if (!std::filesystem::exists(file)) return std::nullopt;
    }
    return image;
}

#ifdef KEEL_SANITIZER_BUILD
constexpr bool kJailed = false;
#else
constexpr bool kJailed = true;
#endif
constexpr uid_t kJailUid = 4721;
constexpr gid_t kJailGid = 4722;
constexpr const char* kCgroupRoot = "/sys/fs/cgroup";
// 512 MiB of guest RAM, keel and the page cache of the disk's writes; the
// limit is in force (keel's memory is charged to the VM's cgroup), not tight.
constexpr const char* kMemoryMax = "805306368";

// Everything that describes the VM.
struct LegacyVm {
    LegacyImage image;
    std::string disk;       // the copy the guest writes to, owned by the jail's uid
    std::string jail_base;  // keel jail --chroot-base
    std::string id;         // keel jail --id
    std::string tap = kTap;
    std::string cmdline;

    [[nodiscard]] std::string jail_dir() const { return jail_base + "/keel/" + id; }
    // Inside the jail '/' is this directory: keel's socket and statistics are here on the host.
    [[nodiscard]] std::string jail_root() const { return jail_dir() + "/root"; }
    [[nodiscard]] std::string cgroup() const { return std::string(kCgroupRoot) + "/keel/" + id; }
    // Where the host finds the files keel makes: inside the jail's root when jailed.
    [[nodiscard]] std::string made_by_keel(const std::string& name) const {
        return (kJailed ? jail_root() : jail_base) + "/" + name;
    }
};

// keel jail runs keel as kJailUid in the VM's jail and cgroup, inside the
// test's network namespace, where the TAP is. Paths after `--` that keel makes
// (socket, statistics) are the jail's; keel jail maps the images in.
std::vector<std::string> launch_command(const NetNamespace& ns, const LegacyVm& vm) {
    if (!kJailed) {
        return ns.command({keel_binary(), "run", "--kernel", vm.image.kernel, "--initrd", vm.image.initrd, "--cmdline",
                           vm.cmdline, "--cpus", "2", "--memory", "512M", "--disk", "path=" + vm.disk, "--net",
                           "tap=" + vm.tap, "--api-sock", vm.made_by_keel("keel.sock"), "--stats-json",
                           vm.made_by_keel("stats.json")});
    }
    return {keel_binary(), "jail", "--id", vm.id, "--uid", std::to_string(kJailUid), "--gid", std::to_string(kJailGid),
            "--chroot-base", vm.jail_base, "--cgroup", std::string("memory.max=") + kMemoryMax, "--cgroup",
            "pids.max=64", "--netns", "/var/run/netns/" + ns.name(), "--", "--kernel", vm.image.kernel, "--initrd",
            vm.image.initrd, "--cmdline", vm.cmdline, "--cpus", "2", "--memory", "512M", "--disk", "path=" + vm.disk,
            "--net", "tap=" + vm.tap, "--api-sock", "/keel.sock", "--stats-json", "/stats.json"};
}

// A jail id of its own for each boot (a retried boot too): keel jail refuses
// to reuse one whose directory or cgroup is still there.
std::string next_jail_id() {
    static int boots = 0;
    return "legacy" + std::to_string(::getpid()) + "-" + std::to_string(++boots);
}

// What the host side saw, written on the HostAction's thread and read after it stopped.
struct HostSide {
    std::mutex lock;
    ProcessResult page;
    HttpReply ctrl_alt_del;
    std::chrono::steady_clock::duration launch_to_service{};
    bool ran_as_jail_uid = false;
};

struct LegacyRun {
    Boot boot;
    ProcessResult page;
    HttpReply ctrl_alt_del;
    std::chrono::steady_clock::duration launch_to_service{};
    ProcessResult fsck;
    std::string memory_max;  // the VM's cgroup, read once keel has exited
    bool ran_as_jail_uid = false;
};

LegacyRun boot_serve_and_shut_down(const LegacyImage& image) {
    const auto dir = scratch_dir();
    LegacyVm vm{image, dir + "/rootfs.ext4", dir + "/jails", next_jail_id(), kTap,
                // nokaslr: a stuck vCPU's rip in keel's statistics can then be looked up (in
                // /proc/kallsyms of another nokaslr boot, or the -dbg package's System.map).
                std::string("console=ttyS0 reboot=k panic=-1 nokaslr root=/dev/vda rw keel.net=eth0=") + kGuestAddress +
                    "/30"};
    const auto copy = run_process({"/bin/cp", "--sparse=always", image.rootfs, vm.disk});
    if (copy.exit_code != 0) throw std::runtime_error("cannot copy the legacy image: " + copy.err);
    if (::chown(vm.disk.c_str(), kJailUid, kJailGid) != 0) throw std::runtime_error("cannot chown the image copy");
    const std::string api_socket = vm.made_by_keel("keel.sock");
    if (!kJailed) std::filesystem::create_directories(vm.jail_base);

    NetNamespace ns;
    ns.add_tap(vm.tap, kHostCidr);
    HostSide host;
    const auto launched = std::chrono::steady_clock::now();
    HostAction host_side("KEEL-TEST service-up=", [&](std::stop_token stop) {
        const auto service_up = std::chrono::steady_clock::now() - launched;
        ProcessOptions options;
        options.timeout = 60s;
        options.kill_when = stop_with(stop);
        // lighttpd listens already (the image's keel-ready said so); a few
        // tries cover the first ARP exchange on the fresh TAP.
        auto page = run_process(ns.command({"curl", "-sS", "--max-time", "20", "--retry", "3", "--retry-connrefused",
                                            "-w", "\nHTTP-STATUS %{http_code}\n",
                                            std::string("http://") + kGuestAddress + "/"}),
                                options);
        // The socket keel made (keel removes it at exit) is the jail uid's: keel ran as
        // that uid, with the jail's root as '/'.
        struct stat socket_info {};
        const bool jail_uid_socket = ::lstat(api_socket.c_str(), &socket_info) == 0 &&
                                     S_ISSOCK(socket_info.st_mode) && socket_info.st_uid == (kJailed ? kJailUid : 0);
        auto reply = curl_api(api_socket, "PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})");
        const std::lock_guard guard(host.lock);
        host.ran_as_jail_uid = jail_uid_socket;
        host.launch_to_service = service_up;
        host.page = std::move(page);
        host.ctrl_alt_del = std::move(reply);
    });
    ProcessOptions options;
    options.timeout = 400s;  // tens of seconds in the emulated sandbox, most of it sysvinit's scripts
    options.watch = host_side.watcher();
    LegacyRun run;
    run.boot = run_keel_boot(launch_command(ns, vm), vm.made_by_keel("stats.json"), options);
    host_side.stop();
    if (kJailed) {
        std::ifstream limit(vm.cgroup() + "/memory.max");
        std::getline(limit, run.memory_max);
    }
    {
        const std::lock_guard guard(host.lock);
        run.page = host.page;
        run.ctrl_alt_del = host.ctrl_alt_del;
        run.launch_to_service = host.launch_to_service;
        run.ran_as_jail_uid = host.ran_as_jail_uid;
    }
    run.fsck = run_process({"/sbin/e2fsck", "-fn", vm.disk});
    // keel jail leaves the VM's jail and cgroup for inspection; the test does not.
    ::rmdir(vm.cgroup().c_str());
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
    return run;
}

// One more emulated-host failure, seen in 2 of this test's first 4 runs in the sandbox and never
// under QEMU: L1 KVM gave up emulating a guest instruction ("KVM internal error 1") before the
// guest printed its first line, both times at the same place in the kernel's slab allocator
// (nokaslr rip 0xffffffff81317850, in get_partial_node), ~1 s into the boot. Treated like
// guest_boot.h's emulated_host_failure(): only inside the sandbox, and only once.
bool early_emulation_failure(const Boot& b) {
    return running_emulated() && b.result.out.empty() &&
           b.result.err.find("KVM internal error") != std::string::npos;
}

// Says so, as note_emulated_host_failure() does for the other kinds (scripts/test lists them).
void note_early_emulation_failure(const Boot& b) {
    const std::string line =
        "[test harness] legacy image: L1 KVM could not emulate a guest instruction before the guest's first "
        "line, on the emulated host; running it once more. " +
        stall_report(b);
    std::cerr << line << "\n" << b.result.err << std::endl;
    if (const char* log_path = std::getenv("KEEL_EMULATED_STALL_LOG")) {
        std::ofstream(log_path, std::ios::app) << line << "\n";
    }
}

double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

TEST_CASE("the legacy Debian image boots jailed with sysvinit, serves its page over the TAP and shuts down clean "
          "on Ctrl-Alt-Del",
          "[kvm]") {
    const auto image = legacy_image();
    if (!image) {
        WARN("legacy image not built (guest-images/build-legacy-image, or KEEL_LEGACY_IMAGE_DIR): not tested");
        return;
    }
    if (!can_create_net_namespaces()) {
        WARN("the legacy image test needs root (network namespaces, TAPs, keel jail) and iproute2: not tested");
        return;
    }
    if (::access((std::string(kCgroupRoot) + "/cgroup.controllers").c_str(), R_OK) != 0) {
        WARN("no cgroup v2 hierarchy at /sys/fs/cgroup (keel jail's cgroup): the legacy image test not run");
        return;
    }
    REQUIRE_FALSE(image->page_marker.empty());
    auto run = boot_serve_and_shut_down(*image);
    if (emulated_host_failure(run.boot) || early_emulation_failure(run.boot)) {
        if (early_emulation_failure(run.boot)) {
            note_early_emulation_failure(run.boot);
        } else {
            note_emulated_host_failure("legacy image", run.boot);
        }
        run = boot_serve_and_shut_down(*image);
    }
    const auto& out = run.boot.result.out;
    INFO("guest console:\n" << out << "\nkeel stderr:\n" << run.boot.result.err << "\n" << stall_report(run.boot));
    INFO("host's HTTP fetch: exit " << run.page.exit_code << "\n" << run.page.out << run.page.err);
    INFO("SendCtrlAltDel: " << run.ctrl_alt_del.status << " " << run.ctrl_alt_del.body);
    INFO("e2fsck -fn: exit " << run.fsck.exit_code << "\n" << run.fsck.out << run.fsck.err);

    CHECK(marker(out, "service-up") == "lighttpd");
    CHECK(run.page.exit_code == 0);
    CHECK(run.page.out.find("HTTP-STATUS 200") != std::string::npos);
    CHECK(run.page.out.find(image->page_marker) != std::string::npos);
    CHECK(run.ctrl_alt_del.status == 204);
    CHECK(marker(out, "ctrl-alt-del") == "received");
    REQUIRE_FALSE(run.boot.result.timed_out);
    CHECK(run.boot.result.exit_code == 0);
    CHECK(run.boot.stats.value("stop_reason", std::string()) == "poweroff");
    CHECK(run.fsck.exit_code == 0);
    CHECK(run.ran_as_jail_uid);
    if (kJailed) {
        CHECK(run.memory_max == kMemoryMax);
    } else {
        WARN("a sanitizer build's keel is linked dynamically and cannot be jailed: the image booted unjailed");
    }
    std::cout << "legacy image: service up " << seconds(run.launch_to_service) << " s after launch (guest uptime "
              << marker(out, "uptime").value_or("?") << " s)" << std::endl;
}
