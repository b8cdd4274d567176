#include "guest_boot.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace keel::test {

std::string base64(const std::string& bytes) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t i = 0;
    const auto byte = [&](size_t at) { return uint32_t{static_cast<uint8_t>(bytes[at])}; };
    for (; i + 2 < bytes.size(); i += 3) {
        const uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
        for (int shift = 18; shift >= 0; shift -= 6) out += kAlphabet[(v >> shift) & 0x3f];
    }
    if (i < bytes.size()) {
        uint32_t v = byte(i) << 16;
        if (i + 1 < bytes.size()) v |= byte(i + 1) << 8;
        out += kAlphabet[(v >> 18) & 0x3f];
        out += kAlphabet[(v >> 12) & 0x3f];
        out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 0x3f] : '=';
        out += '=';
    }
    return out;
}

Boot run_keel_boot(const std::vector<std::string>& argv, const std::string& stats_path,
                   const ProcessOptions& options) {
    std::filesystem::remove(stats_path);
    Boot b{run_process(argv, options), {}};
    if (std::ifstream stats(stats_path); stats) b.stats = nlohmann::json::parse(stats, nullptr, false);
    return b;
}

Boot boot(const BootRequest& request) {
    const auto dir = scratch_dir();
    const std::string stats_path = dir + "/stats.json";
    std::string cmdline = "console=ttyS0 reboot=k panic=-1";
    if (!request.cmdline_extra.empty()) cmdline += " " + request.cmdline_extra;
    if (!request.guest_script.empty()) cmdline += " keel.run=" + base64(request.guest_script);
    std::vector<std::string> argv{keel_binary(), "run",          "--kernel", request.kernel,
                                  "--initrd",    request.initrd, "--cpus",   std::to_string(request.cpus),
                                  "--memory",    request.memory, "--stats-json", stats_path,
                                  "--cmdline",   cmdline};
    argv.insert(argv.end(), request.keel_args.begin(), request.keel_args.end());
    argv.insert(argv.begin(), request.command_prefix.begin(), request.command_prefix.end());
    const auto run = [&] { return run_keel_boot(argv, stats_path, request.options); };
    Boot b = run();
    const bool rerunnable = !request.options.watch && !request.options.kill_when && request.options.script.empty();
    if (rerunnable && emulated_host_failure(b)) {
        note_emulated_host_failure(Catch::getResultCapture().getCurrentTestName(), b);
        b = run();
    }
    return b;
}

void require_clean_exit(const Boot& b) {
    INFO("guest console:\n" << b.result.out);
    INFO("keel stderr:\n" << b.result.err);
    INFO(stall_report(b));
    REQUIRE_FALSE(b.result.timed_out);
    REQUIRE(b.result.exit_code == 0);
    REQUIRE(marker(b.result.out, "boot-ok").has_value());
}

std::string stall_report(const Boot& b) {
    if (!b.stats.is_object()) return "keel wrote no statistics";
    std::string report = "keel's statistics: stop " + b.stats.value("stop_reason", std::string("?"));
    for (const auto& vcpu : b.stats.value("vcpus_at_stop", nlohmann::json::array())) {
        if (vcpu.is_string()) report += "\n  vCPU " + vcpu.get<std::string>();
    }
    const auto kvm = b.stats.value("exits", nlohmann::json::object()).value("kvm", nlohmann::json::object());
    report += "\n  KVM:";
    for (const char* count : {"exits", "insn_emulation", "req_event", "irq_injections", "irq_window_exits",
                              "halt_exits", "mmio_exits", "io_exits"}) {
        report += std::string(" ") + count + "=" + std::to_string(kvm.value(count, uint64_t{0}));
    }
    for (const auto& device : b.stats.value("devices", nlohmann::json::array())) {
        report += "\n  " + device.dump();
    }
    return report;
}

bool running_emulated() {
    const char* in_sandbox = std::getenv("KEEL_IN_SANDBOX");
    return in_sandbox != nullptr && std::string(in_sandbox) == "1";
}

bool emulated_host_failure(const Boot& b) {
    if (!running_emulated()) return false;
    if (b.result.timed_out) return true;
    const bool triple_fault = b.stats.is_object() && b.stats.value("stop_reason", std::string()) == "triple-fault";
    return triple_fault && !marker(b.result.out, "action").has_value();
}

void note_emulated_host_failure(const std::string& test, const Boot& b) {
    const std::string line = "[test harness] " + test + ": " +
                             (b.result.timed_out ? "the guest ran out of time" : "a vCPU triple-faulted") +
                             " on the emulated host; running it once more. " + stall_report(b);
    std::cerr << line << "\n" << b.result.err << std::endl;
    if (const char* log_path = std::getenv("KEEL_EMULATED_STALL_LOG")) {
        std::ofstream(log_path, std::ios::app) << line << "\n";
    }
}

}  // namespace keel::test
