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

[[nodiscard]] Boot boot(const BootRequest& request);

// keel exited 0, did not time out, and the guest reached "KEEL-TEST boot-ok".
void require_clean_exit(const Boot& b);

[[nodiscard]] std::string base64(const std::string& bytes);

}  // namespace keel::test
