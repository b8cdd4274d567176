#include "guest_boot.h"

#include <catch2/catch.hpp>

#include <fstream>

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
    ProcessOptions options = request.options;
    Boot b{run_process(argv, options), {}};
    std::ifstream stats(stats_path);
    if (stats) b.stats = nlohmann::json::parse(stats, nullptr, false);
    return b;
}

void require_clean_exit(const Boot& b) {
    INFO("guest console:\n" << b.result.out);
    INFO("keel stderr:\n" << b.result.err);
    REQUIRE_FALSE(b.result.timed_out);
    REQUIRE(b.result.exit_code == 0);
    REQUIRE(marker(b.result.out, "boot-ok").has_value());
}

}  // namespace keel::test
