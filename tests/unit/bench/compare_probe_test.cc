// What keel bench compare reads from outside a running system, on output
// captured from real runs inside scripts/kvm-sandbox (fixtures/): smaps of
// keel and of QEMU microvm at the payload's marker (1 vCPU, 128 MiB), the
// listing of KVM's debugfs directory then, and `strace -f` of `crun run`.
// That keel was linked dynamically (as the ASan build still is), so its smaps
// has shared libraries; a static keel's has only its binary.

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/process_probe.h"
#include "bench/strace_summary.h"

using namespace keel;
using namespace keel::bench;

namespace {

constexpr uint64_t kGuestMemory = uint64_t{128} << 20;

std::string fixture(const std::string& name) {
    std::ifstream in(std::string(KEEL_SOURCE_DIR) + "/tests/unit/bench/fixtures/" + name);
    REQUIRE(in.good());
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// The sum of every mapping's Rss field, added up independently of the parser.
uint64_t total_rss_kib(const std::string& smaps) {
    std::istringstream lines(smaps);
    std::string line;
    uint64_t total = 0;
    while (std::getline(lines, line)) {
        if (line.rfind("Rss:", 0) == 0) total += std::stoull(line.substr(4));
    }
    return total;
}

uint64_t all_kinds_rss(const MemoryBreakdown& b) {
    return b.overhead().rss_kib + b.guest_ram.rss_kib;
}

}  // namespace

TEST_CASE("keel's guest RAM is the one anonymous mapping the size of the guest", "[bench][smaps]") {
    const std::string smaps = fixture("keel.smaps");
    const auto ram = guest_ram_mappings(smaps, kGuestMemory);
    REQUIRE(ram.size() == 1);
    CHECK(ram[0].second - ram[0].first == kGuestMemory);

    const auto breakdown = classify_smaps(smaps, ram, {}, "/work/main/build/vmm/keel");
    // Every page is counted once, in exactly one kind.
    CHECK(all_kinds_rss(breakdown) == total_rss_kib(smaps));
    // The guest had booted to its payload: most of its RAM was touched, and it
    // is not counted as overhead.
    CHECK(breakdown.guest_ram.rss_kib > 64 * 1024);
    CHECK(breakdown.guest_ram.rss_kib <= 128 * 1024);
    CHECK(breakdown.overhead().rss_kib < 16 * 1024);
    CHECK(breakdown.binary.rss_kib > 0);     // keel's own text and data
    CHECK(breakdown.libraries.rss_kib > 0);  // libc, libstdc++, spdlog, ...
    CHECK(breakdown.kvm.rss_kib > 0);        // the vCPU's kvm_run page
    CHECK(breakdown.overhead().pss_kib <= breakdown.overhead().rss_kib);
}

TEST_CASE("without guest RAM ranges, all of a VMM's memory is overhead", "[bench][smaps]") {
    const std::string smaps = fixture("keel.smaps");
    const auto breakdown = classify_smaps(smaps, {}, {}, "/work/main/build/vmm/keel");
    CHECK(breakdown.guest_ram.rss_kib == 0);
    CHECK(breakdown.overhead().rss_kib == total_rss_kib(smaps));
    CHECK(guest_ram_mappings(smaps, 0).empty());
}

TEST_CASE("QEMU's guest RAM is found the same way and its overhead is much larger", "[bench][smaps]") {
    const std::string smaps = fixture("qemu.smaps");
    const auto ram = guest_ram_mappings(smaps, kGuestMemory);
    REQUIRE(!ram.empty());
    for (const auto& [first, last] : ram) CHECK(last - first >= kGuestMemory / 2);
    const auto qemu = classify_smaps(smaps, ram, {}, "/usr/bin/qemu-system-x86_64");
    CHECK(all_kinds_rss(qemu) == total_rss_kib(smaps));
    CHECK(qemu.guest_ram.rss_kib > 64 * 1024);
    CHECK(qemu.binary.rss_kib > 0);

    const std::string keel_smaps = fixture("keel.smaps");
    const auto keel =
        classify_smaps(keel_smaps, guest_ram_mappings(keel_smaps, kGuestMemory), {}, "/work/main/build/vmm/keel");
    CHECK(keel.overhead().rss_kib < qemu.overhead().rss_kib);
}

TEST_CASE("a guest larger than any mapping has no guest RAM, odd smaps text is skipped", "[bench][smaps]") {
    CHECK(guest_ram_mappings(fixture("keel.smaps"), uint64_t{64} << 30).empty());
    const std::string odd =
        "zzzz-1000 rw-p 00000000 00:00 0\n"          // not hex
        "2000-1000 rw-p 00000000 00:00 0\n"          // end before start
        "10000000-20000000 rw-p 00000000 00:00 0\n"  // 256 MiB, anonymous
        "Rss:        4 kB\n"
        "30000000-40000000 rw-s 00000000 00:01 77 /memfd:x (deleted)\n"  // file-backed
        "50000000-60000000 rw-p 00000000 00:00 0   [heap]\n";            // named
    const auto ram = guest_ram_mappings(odd, kGuestMemory);
    REQUIRE(ram.size() == 1);
    CHECK(ram[0] == AddressRange{0x10000000, 0x20000000});
}

TEST_CASE("KVM's debugfs directories of a process are <pid>-<fd>, and only those", "[bench][debugfs]") {
    std::vector<std::string> entries;
    std::istringstream listing(fixture("debugfs.ls"));
    for (std::string name; std::getline(listing, name);) entries.push_back(name);
    // The sandbox's idle holder VM (159) and the keel that was measured (168).
    CHECK(kvm_debugfs_vm_dirs(entries, 168) == std::vector<std::string>{"168-7"});
    CHECK(kvm_debugfs_vm_dirs(entries, 159) == std::vector<std::string>{"159-5"});
    CHECK(kvm_debugfs_vm_dirs(entries, 16).empty());
    CHECK(kvm_debugfs_vm_dirs(entries, 1).empty());
    CHECK(kvm_debugfs_vm_dirs({"42-", "42-x", "42-3", "42-10"}, 42) == std::vector<std::string>{"42-3", "42-10"});
}

TEST_CASE("VM exits are summed over a process's VMs from debugfs", "[bench][debugfs]") {
    namespace fs = std::filesystem;
    const fs::path root = fs::temp_directory_path() / ("keel-debugfs-test-" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root / "168-7");
    fs::create_directories(root / "168-9");
    fs::create_directories(root / "159-5");
    std::ofstream(root / "168-7" / "exits") << "30630\n";
    std::ofstream(root / "168-9" / "exits") << "12\n";
    std::ofstream(root / "159-5" / "exits") << "7\n";
    std::ofstream(root / "exits") << "30649\n";
    CHECK(kvm_exits_of(168, root.string()) == uint64_t{30642});
    CHECK(kvm_exits_of(159, root.string()) == uint64_t{7});
    CHECK_FALSE(kvm_exits_of(200, root.string()).has_value());
    std::ofstream(root / "159-5" / "exits") << "garbage";
    CHECK_FALSE(kvm_exits_of(159, root.string()).has_value());
    CHECK_FALSE(kvm_exits_of(168, (root / "absent").string()).has_value());
    fs::remove_all(root);
}

TEST_CASE("a container's payload surface: only the payload's own calls from its execve on", "[bench][strace]") {
    const std::string text = fixture("crun.strace");
    const auto summary =
        summarize_strace(text, {StraceWindow::Kind::MatchingProcessTree, "execve", "\"/bench/payload.sh\""});
    REQUIRE(summary.window_found);
    CHECK(summary.unparsed_lines == 0);
    // crun sets the container up (namespaces, pivot_root, mounts) before the
    // payload runs: in the whole run, not in the payload's window.
    for (const char* setup : {"clone3", "pivot_root", "mount", "unshare", "setns"}) {
        if (summary.all_calls.contains(setup)) CHECK_FALSE(summary.window_calls.contains(setup));
    }
    CHECK(summary.all_calls.contains("pivot_root"));
    // The payload (busybox sh) itself: its execve, reading the go-ahead line
    // and writing its two lines, then exiting.
    CHECK(summary.window_calls.at("execve") == 1);
    CHECK(summary.window_calls.contains("read"));
    CHECK(summary.window_calls.at("write") >= 2);
    CHECK(summary.window_calls.contains("exit_group"));
    CHECK(summary.window_calls.size() < summary.all_calls.size());
    uint64_t window_total = 0;
    for (const auto& [name, calls] : summary.window_calls) {
        CHECK(calls <= summary.all_calls.at(name));
        window_total += calls;
    }
    CHECK(window_total > 0);
}

TEST_CASE("a VM's payload surface: every call from the first KVM_RUN on", "[bench][strace]") {
    const std::string text =
        "100   execve(\"/usr/bin/keel\", [\"keel\", \"run\"], 0x7ffd /* 5 vars */) = 0\n"
        "100   openat(AT_FDCWD, \"/dev/kvm\", O_RDWR|O_CLOEXEC) = 3\n"
        "100   clone3({flags=CLONE_VM|CLONE_THREAD, ...}, 88) = 101\n"
        "101   ioctl(5, KVM_RUN <unfinished ...>\n"
        "100   epoll_wait(4,  <unfinished ...>\n"
        "101   <... ioctl resumed>, 0)            = 0\n"
        "101   ioctl(5, KVM_RUN, 0)              = 0\n"
        "100   <... epoll_wait resumed>[{events=EPOLLIN, data={u32=1, u64=1}}], 8, -1) = 1\n"
        "100   read(6, \"\\n\", 4096)              = 1\n"
        "101   --- SIGUSR1 {si_signo=SIGUSR1, si_code=SI_TKILL, si_pid=100, si_uid=0} ---\n"
        "101   +++ exited with 0 +++\n"
        "100   exit_group(0)                     = ?\n";
    const auto summary = summarize_strace(text, {StraceWindow::Kind::FromFirstMatch, "ioctl", "KVM_RUN"});
    REQUIRE(summary.window_found);
    CHECK(summary.all_calls.at("ioctl") == 2);  // a resumed call is one call
    CHECK(summary.all_calls.at("openat") == 1);
    CHECK(summary.all_calls.size() == 7);
    CHECK(summary.window_calls ==
          std::map<std::string, uint64_t>{{"ioctl", 2}, {"epoll_wait", 1}, {"read", 1}, {"exit_group", 1}});
    CHECK(summary.unparsed_lines == 0);
}

TEST_CASE("the payload's children count, also when their calls come before the parent's return", "[bench][strace]") {
    const std::string text =
        "10 execve(\"/usr/bin/crun\", [\"crun\"], 0x1 /* 1 var */) = 0\n"
        "10 clone3({flags=CLONE_NEWPID}, 88) = 11\n"
        "11 clone(child_stack=NULL, flags=SIGCHLD) = 12\n"  // before the exec: crun's, not the payload's
        "12 exit_group(0) = ?\n"
        "11 execve(\"/bench/payload.sh\", [\"/bench/payload.sh\"], 0x2 /* 3 vars */) = 0\n"
        "11 clone(child_stack=NULL, flags=SIGCHLD <unfinished ...>\n"
        "13 getpid() = 1\n"  // the child runs before its parent's clone returns
        "11 <... clone resumed>) = 13\n"
        "13 uname({sysname=\"Linux\"}) = 0\n"
        "13 exit_group(0) = ?\n"
        "11 wait4(-1, NULL, 0, NULL) = 13\n"
        "garbage line\n"
        "11 exit_group(0) = ?\n";
    const auto summary =
        summarize_strace(text, {StraceWindow::Kind::MatchingProcessTree, "execve", "\"/bench/payload.sh\""});
    REQUIRE(summary.window_found);
    CHECK(summary.unparsed_lines == 1);
    CHECK(summary.window_calls ==
          std::map<std::string, uint64_t>{
              {"execve", 1}, {"clone", 1}, {"getpid", 1}, {"uname", 1}, {"wait4", 1}, {"exit_group", 2}});
    CHECK(summary.all_calls.at("exit_group") == 3);
}

TEST_CASE("no matching call: no window, a cycle of creators does not loop", "[bench][strace]") {
    const std::string text =
        "1 clone(flags=SIGCHLD) = 2\n"
        "2 clone(flags=SIGCHLD) = 1\n"
        "2 execve(\"/other\", [], 0x0) = 0\n";
    const auto summary =
        summarize_strace(text, {StraceWindow::Kind::MatchingProcessTree, "execve", "\"/bench/payload.sh\""});
    CHECK_FALSE(summary.window_found);
    CHECK(summary.window_calls.empty());
    CHECK(summary.all_calls.at("clone") == 2);
    CHECK_FALSE(summarize_strace("", {}).window_found);
}
