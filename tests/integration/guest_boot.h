#pragma once

// Boots a test guest with keel and collects what it printed and its --stats-json.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "guest_files.h"
#include "process.h"

namespace keel::test {

struct BootRequest {
    std::string kernel;
    std::string initrd;
    uint32_t cpus = 1;
    std::string memory = "256M";
    std::string cmdline_extra;          // appended to "console=ttyS0 reboot=k panic=-1"
    std::string guest_script;           // run by the test init (keel.run=, base64)
    std::vector<std::string> keel_args; // e.g. {"--disk", "path=..."}
    // Runs keel through this command, e.g. {"/usr/sbin/ip", "netns", "exec", NAME}.
    std::vector<std::string> command_prefix;
    ProcessOptions options;
};

struct Boot {
    ProcessResult result;
    nlohmann::json stats;
};

// Standard base64 (with padding), as keel.run= wants a script.
[[nodiscard]] std::string base64(const std::string& bytes);

// Runs keel with `argv` (which writes --stats-json to `stats_path`) and reads
// the statistics it wrote; a stale file from an earlier run is removed first.
[[nodiscard]] Boot run_keel_boot(const std::vector<std::string>& argv, const std::string& stats_path,
                                 const ProcessOptions& options = {});

// A boot with nothing but the guest's own output to go by (no watch, script or
// kill_when) runs once more after an emulated-host failure, reported as above.
[[nodiscard]] Boot boot(const BootRequest& request);

// keel exited 0, did not time out, and the guest reached "KEEL-TEST boot-ok".
void require_clean_exit(const Boot& b);

// What keel's statistics say about a boot: why it stopped, where each vCPU
// was, and the KVM counts that tell a guest spinning in KVM's instruction
// emulator (insn_emulation and req_event in the millions) from an idle one.
[[nodiscard]] std::string stall_report(const Boot& b);

// True inside scripts/kvm-sandbox: KVM is L1 KVM on QEMU TCG's nested SVM.
[[nodiscard]] bool running_emulated();

// What the emulated host (L1 KVM on QEMU TCG's nested SVM) has been seen to
// do to a healthy keel and guest, rarely (docs/testing.md, "Emulated-host
// failures"): the guest stops for good while keel owes it nothing (the boot
// runs out of time), or a vCPU triple-faults in the middle of an ordinary
// kernel's boot (keel stops with "triple-fault" before the guest announced a
// reboot). Only inside the sandbox; anywhere else every failure is a failure.
[[nodiscard]] bool emulated_host_failure(const Boot& b);

// Records such a boot: on stderr, and in $KEEL_EMULATED_STALL_LOG
// (scripts/test lists them after the kvm batch).
void note_emulated_host_failure(const std::string& test, const Boot& b);

// Runs `attempt` (which boots a guest and returns the Boot, or a struct whose
// `boot` is the Boot) and, when emulated_host_failure() says so, runs it once more and
// returns the second result. Every assertion still applies to what is
// returned, so a keel that hangs or crashes its guest does so twice and fails.
// An attempt may return the Boot itself.
inline const Boot& boot_of(const Boot& boot) { return boot; }
template <class Result>
const Boot& boot_of(const Result& result) {
    return result.boot;
}

template <class Attempt>
auto retry_once_after_emulated_host_failure(const std::string& test, Attempt attempt) {
    auto first = attempt();
    if (!emulated_host_failure(boot_of(first))) return first;
    note_emulated_host_failure(test, boot_of(first));
    return attempt();
}

}  // namespace keel::test
