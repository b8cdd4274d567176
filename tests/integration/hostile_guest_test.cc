// The attack guest (tests/hostile-guest/) against a real keel: every virtio
// device on both transports, attacked as docs/security.md lists, must answer
// each attack as the virtio spec wants and then serve a correct driver again.
// Around the guest's own verdicts the test checks what only the host sees:
// keel exits cleanly on the guest's power-off, no sanitizer report (the
// ASan/UBSan batch runs this same test), a bounded number of log lines, and
// no keel thread left busy while the guest idles after the attacks.

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "../hostile-guest/protocol.h"
#include "guest_boot.h"
#include "guest_files.h"
#include "net_host.h"
#include "process.h"

using namespace keel::test;

namespace {

using Clock = std::chrono::steady_clock;

std::string hostile_guest_path() { return env_or("KEEL_HOSTILE_GUEST", KEEL_HOSTILE_GUEST_PATH); }

std::string ip_text(const unsigned char (&ip)[4]) {
    return std::to_string(ip[0]) + "." + std::to_string(ip[1]) + "." + std::to_string(ip[2]) + "." +
           std::to_string(ip[3]);
}

// Sector n starts with the magic and n in 8 hex digits (protocol.h).
void write_labelled_disk(const std::string& path) {
    std::ofstream out(path, std::ios::binary);
    for (unsigned sector = 0; sector < keel::hostile::kDiskSectors; ++sector) {
        std::string block(512, '\0');
        char label[16];
        std::snprintf(label, sizeof(label), "%08x", sector);
        const std::string text = std::string(keel::hostile::kDiskSectorMagic) + label;
        block.replace(0, text.size(), text);
        out.write(block.data(), static_cast<std::streamsize>(block.size()));
    }
}

// CPU time (user + system, in clock ticks) of each of keel's threads, by
// "tid name".
std::map<std::string, uint64_t> thread_cpu_ticks(pid_t pid) {
    std::map<std::string, uint64_t> ticks;
    std::error_code error;
    const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
    for (const auto& task : std::filesystem::directory_iterator(task_dir, error)) {
        std::ifstream stat_file(task.path() / "stat");
        std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
        const auto name_end = stat.rfind(')');
        const auto name_begin = stat.find('(');
        if (name_end == std::string::npos || name_begin == std::string::npos) continue;
        std::istringstream fields(stat.substr(name_end + 2));
        std::string field;
        uint64_t utime = 0, stime = 0;
        // Fields 3.. after the name: state is field 3, utime 14, stime 15.
        for (int n = 3; n <= 15 && fields >> field; ++n) {
            if (n == 14) utime = std::stoull(field);
            if (n == 15) stime = std::stoull(field);
        }
        ticks[task.path().filename().string() + " " + stat.substr(name_begin + 1, name_end - name_begin - 1)] =
            utime + stime;
    }
    return ticks;
}

// Two samples of keel's threads: when the guest starts idling and
// kIdleMilliseconds later; then the byte on the console that ends the idle.
struct IdleWatch {
    pid_t pid = 0;
    bool begun = false, done = false;
    Clock::time_point began;
    std::map<std::string, uint64_t> before, after;
    double seconds = 0;

    std::string operator()(const std::string& out) {
        if (pid == 0 || done) return {};
        if (!begun) {
            if (out.find("KEEL-ATTACK idle begin") == std::string::npos) return {};
            begun = true;
            began = Clock::now();
            before = thread_cpu_ticks(pid);
            return {};
        }
        if (Clock::now() - began < std::chrono::milliseconds(keel::hostile::kIdleMilliseconds)) return {};
        after = thread_cpu_ticks(pid);
        seconds = std::chrono::duration<double>(Clock::now() - began).count();
        done = true;
        return "g";
    }
};

struct AttackRun {
    Boot boot;
    IdleWatch idle;
};

AttackRun run_attack_guest(const std::string& transport, const std::string& disk) {
    const NetNamespace ns;
    ns.add_tap("ktap0", ip_text(keel::hostile::kHostIp) + "/24");
    const auto dir = scratch_dir();
    const std::string stats_path = dir + "/stats.json";
    // 3.25 GiB: RAM on both sides of the 32-bit MMIO hole, so that buffers
    // can straddle it (the memory is mapped lazily; the guest touches ~50 MiB).
    std::vector<std::string> argv = ns.command({keel_binary(), "run", "--kernel", hostile_guest_path(), "--memory",
                                                "3328M", "--cpus", "1", "--transport", transport, "--disk",
                                                "path=" + disk, "--net", "tap=ktap0", "--rng", "--stats-json",
                                                stats_path});
    AttackRun run;
    ProcessOptions options;
    // 40-100 s in the emulated sandbox (ASan build included).
    options.timeout = std::chrono::seconds(300);
    options.started = [&run](pid_t pid) { run.idle.pid = pid; };
    options.keep_stdin_open = true;
    options.reply = [&run](const std::string& out) { return run.idle(out); };
    run.boot = run_keel_boot(argv, stats_path, options);
    return run;
}

std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.rfind(prefix, 0) == 0) lines.push_back(line);
    }
    return lines;
}

size_t count_lines(const std::string& text) { return static_cast<size_t>(std::count(text.begin(), text.end(), '\n')); }

void attack_guest_on(const std::string& transport) {
    INFO("transport " << transport);
    if (!std::filesystem::exists(hostile_guest_path())) FAIL("attack guest not built: " << hostile_guest_path());
    if (!can_create_net_namespaces()) {
        WARN("not root: cannot make the network namespace the attack guest's NIC needs; skipped");
        return;
    }
    const ScratchDir dir;
    const std::string disk = dir.path + "/disk.img";
    write_labelled_disk(disk);

    const AttackRun run = retry_once_after_emulated_host_failure(
        "attack guest, " + transport, [&] { return run_attack_guest(transport, disk); });
    const Boot& b = run.boot;
    INFO("guest console:\n" << b.result.out);
    INFO("keel stderr:\n" << b.result.err);
    INFO(stall_report(b));
    REQUIRE_FALSE(b.result.timed_out);
    CHECK(b.result.err.find("Sanitizer") == std::string::npos);
    CHECK(b.result.err.find("runtime error") == std::string::npos);
    CHECK(b.result.out.find("KEEL-ATTACK fatal") == std::string::npos);
    REQUIRE(b.result.exit_code == 0);
    REQUIRE(b.stats.is_object());
    CHECK(b.stats["stop_reason"] == "poweroff");

    // The guest found all three devices on this transport.
    const auto device_lines = lines_starting(b.result.out, "KEEL-ATTACK device " + transport + " ");
    CHECK(device_lines.size() == 3);
    for (const char* kind : {"blk", "net", "rng"}) {
        const bool found = std::any_of(device_lines.begin(), device_lines.end(), [&](const std::string& line) {
            return line.find(std::string(" ") + kind + " at ") != std::string::npos;
        });
        CHECK(found);
    }

    // Every attack line passed, and the summary agrees with the lines.
    const auto results = lines_starting(b.result.out, "KEEL-ATTACK result ");
    size_t failed = 0;
    for (const auto& line : results) {
        const bool pass = line.size() > 5 && line.compare(line.size() - 5, 5, " PASS") == 0;
        if (!pass) {
            ++failed;
            UNSCOPED_INFO("failed: " << line);
        }
    }
    CHECK(failed == 0);
    // ~50 attacks on each of three devices plus baselines and the pokes: a
    // guest that stopped early has far fewer lines.
    CHECK(results.size() >= 150);
    const auto summary = lines_starting(b.result.out, "KEEL-ATTACK summary ");
    REQUIRE(summary.size() == 1);
    CHECK(summary[0] == "KEEL-ATTACK summary devices=3 attacks=" + std::to_string(results.size()) + " failed=0");

    // keel logs each broken device once per activation, never per kick or
    // per access: the notification floods and the 40,000 random pokes must
    // not show in its log.
    const size_t log_lines = count_lines(b.result.err);
    INFO("keel logged " << log_lines << " lines for " << results.size() << " attacks");
    CHECK(log_lines <= 2 * results.size() + 20);

    // While the guest idled, no keel thread kept a CPU busy.
    REQUIRE(run.idle.done);
    REQUIRE(run.idle.after.size() >= run.idle.before.size());
    for (const auto& [thread, ticks_after] : run.idle.after) {
        const auto before = run.idle.before.find(thread);
        if (before == run.idle.before.end()) continue;
        const double busy = static_cast<double>(ticks_after - before->second) / static_cast<double>(sysconf(_SC_CLK_TCK));
        INFO("thread " << thread << " used " << busy << " s of CPU in " << run.idle.seconds << " s of idle guest");
        CHECK(busy < 0.5 * run.idle.seconds);
    }
}

}  // namespace

TEST_CASE("The attack guest's every attack on virtio-mmio devices is refused and the devices recover", "[kvm][hostile]") {
    attack_guest_on("mmio");
}

TEST_CASE("The attack guest's every attack on virtio-pci devices is refused and the devices recover", "[kvm][hostile]") {
    attack_guest_on("pci");
}
