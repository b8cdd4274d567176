// keel bench legacy's pure parts: the network plan, the commands (keel run,
// the rootfs extraction), the container's configuration, the HTTP reply
// checks, and the report from fabricated samples.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/http_probe.h"
#include "bench/legacy_report.h"
#include "bench/legacy_setup.h"
#include "common/error.h"
#include "argument_checks.h"

using namespace keel;
using namespace keel::bench;

namespace {

LegacySetup setup_for_tests() {
    LegacySetup setup;
    setup.image_dir = "/c/legacy";
    setup.kernel = "/c/legacy/vmlinuz";
    setup.initrd = "/c/legacy/initrd.img";
    setup.rootfs = "/c/legacy/rootfs.ext4";
    setup.page_marker = "keel legacy image 0123abcd";
    setup.keel_binary = "/opt/keel/bin/keel";
    setup.runs = 3;
    return setup;
}

using keel::bench::test::contains_sequence;

LegacySample sample(const std::string& system, unsigned run, double http_ms, uint64_t rss) {
    LegacySample s;
    s.system = system;
    s.run = run;
    s.http_ms = http_ms;
    s.exit_ms = http_ms + 1000;
    s.stop_ms = 900;
    s.http_attempts = 10 * run;
    s.overhead_rss_kib = rss;
    s.overhead_pss_kib = rss / 2;
    s.guest_ram_rss_kib = system == kLegacyKeel ? 100'000 : 0;
    s.processes = system == kLegacyKeel ? 1 : 2;
    s.stop_reason = system == kLegacyKeel ? "poweroff" : "";
    return s;
}

}  // namespace

TEST_CASE("legacy bench: the network is link-local, in namespaces named after the bench", "[bench][legacy]") {
    const LegacyNet net = legacy_net(4242);
    CHECK(net.bench_ns == "keel-legacy-4242");
    CHECK(net.container_ns == "keel-legacy-4242-ctr");
    for (const auto& address : {net.tap_host_cidr, net.guest_address, net.veth_host_cidr, net.container_cidr}) {
        CHECK(address.starts_with("169.254."));
    }
    const auto commands = legacy_net_commands(net);
    REQUIRE_FALSE(commands.empty());
    for (const auto& command : commands) {
        INFO(command.size());
        REQUIRE(command.size() > 3);
        CHECK(command[0] == "ip");
        // Every command names one of the bench's namespaces: none touches the host's.
        CHECK(command[1] == "-n");
        CHECK((command[2] == net.bench_ns || command[2] == net.container_ns));
    }
    CHECK(std::find(commands.begin(), commands.end(),
                    std::vector<std::string>{"ip", "-n", net.bench_ns, "link", "add", "klveth0", "type", "veth", "peer",
                                             "name", "eth0", "netns", net.container_ns}) != commands.end());
    CHECK(std::find(commands.begin(), commands.end(),
                    std::vector<std::string>{"ip", "-n", net.container_ns, "addr", "add", "169.254.77.6/30", "dev",
                                             "eth0"}) != commands.end());
}

TEST_CASE("legacy bench: keel boots the copy with the test's command line, a TAP, the API and statistics",
          "[bench][legacy]") {
    const auto setup = setup_for_tests();
    const LegacyNet net = legacy_net(1);
    CHECK(legacy_vm_cmdline(net) == "console=ttyS0 reboot=k panic=-1 root=/dev/vda rw keel.net=eth0=169.254.77.2/30");
    const auto args = legacy_keel_command(setup, net, "/w/keel-1.ext4", "/w/keel-1.sock", "/w/keel-1.json");
    CHECK(args.front() == "/opt/keel/bin/keel");
    CHECK(args[1] == "run");
    CHECK(contains_sequence(args, {"--kernel", "/c/legacy/vmlinuz"}));
    CHECK(contains_sequence(args, {"--initrd", "/c/legacy/initrd.img"}));
    CHECK(contains_sequence(args, {"--disk", "path=/w/keel-1.ext4"}));
    CHECK(contains_sequence(args, {"--net", "tap=kltap0"}));
    CHECK(contains_sequence(args, {"--api-sock", "/w/keel-1.sock"}));
    CHECK(contains_sequence(args, {"--stats-json", "/w/keel-1.json"}));
    CHECK(contains_sequence(args, {"--cpus", "2"}));
    CHECK(contains_sequence(args, {"--memory", "512M"}));
    CHECK(contains_sequence(args, {"--cmdline", legacy_vm_cmdline(net)}));
}

TEST_CASE("legacy bench: debugfs copies the image's files out, quoted, and a name it cannot take is an error",
          "[bench][legacy]") {
    CHECK(rootfs_extract_command("/c/rootfs.ext4", "/tmp/keel legacy-x/bundle/rootfs") ==
          std::vector<std::string>{"debugfs", "-R", "rdump / \"/tmp/keel legacy-x/bundle/rootfs\"", "/c/rootfs.ext4"});
    CHECK_THROWS_AS(rootfs_extract_command("/c/rootfs.ext4", "/tmp/a\"b"), Error);
    CHECK_THROWS_AS(rootfs_extract_command("/c/rootfs.ext4", "/tmp/a\nb"), Error);
}

TEST_CASE("legacy bench: the container runs lighttpd in the foreground in the bench's namespace, root read-only",
          "[bench][legacy]") {
    const std::vector<WritableDir> writable{{"/run", 0, 0, 0755}, {"/var/log/lighttpd", 33, 33, 0750}};
    const auto config = legacy_oci_config("/run/netns/keel-legacy-1-ctr", writable);
    CHECK(config.at("process").at("args") ==
          nlohmann::json::array({"/usr/sbin/lighttpd", "-D", "-f", "/etc/lighttpd/lighttpd.conf"}));
    CHECK(config.at("root").at("readonly") == true);
    CHECK(config.at("root").at("path") == "rootfs");
    const auto& caps = config.at("process").at("capabilities").at("bounding");
    for (const char* needed : {"CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"}) {
        INFO(needed);
        CHECK(std::find(caps.begin(), caps.end(), needed) != caps.end());
    }
    bool network = false;
    for (const auto& ns : config.at("linux").at("namespaces")) {
        if (ns.at("type") != "network") continue;
        network = true;
        CHECK(ns.at("path") == "/run/netns/keel-legacy-1-ctr");
    }
    CHECK(network);
    // The writable directories: tmpfs with the image's owner and mode, in the given order, after the defaults.
    std::vector<nlohmann::json> tmpfs;
    for (const auto& mount : config.at("mounts")) {
        if (mount.at("destination") == "/run" || mount.at("destination") == "/var/log/lighttpd") tmpfs.push_back(mount);
    }
    REQUIRE(tmpfs.size() == 2);
    CHECK(tmpfs[0].at("type") == "tmpfs");
    CHECK(tmpfs[0].at("options") == nlohmann::json::array({"nosuid", "nodev", "mode=0755", "uid=0", "gid=0"}));
    CHECK(tmpfs[1].at("options") == nlohmann::json::array({"nosuid", "nodev", "mode=0750", "uid=33", "gid=33"}));
    // Parents come before children, or the child's tmpfs would be hidden.
    const auto& paths = legacy_writable_paths();
    const auto at = [&](const char* p) { return std::find(paths.begin(), paths.end(), p) - paths.begin(); };
    CHECK(at("/var/log") < at("/var/log/lighttpd"));
    CHECK(at("/run") < at("/run/lighttpd"));
}

TEST_CASE("legacy bench: an HTTP reply serves the page only as a 200 with the marker in its body", "[bench][legacy]") {
    const std::string ok = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>\nkeel legacy image 0123abcd\n</p>\n";
    CHECK(http_status(ok) == 200);
    CHECK(http_reply_serves(ok, "keel legacy image 0123abcd"));
    CHECK_FALSE(http_reply_serves(ok, "keel legacy image ffff"));
    CHECK_FALSE(http_reply_serves("HTTP/1.1 404 Not Found\r\n\r\nkeel legacy image 0123abcd", "keel legacy image"));
    CHECK_FALSE(http_reply_serves("HTTP/1.1 200 OK\r\nX-Marker: keel legacy image\r\n", "keel legacy image"));
    CHECK(http_status("HTTP/1.0 204 No Content\r\n\r\n") == 204);
    CHECK(http_status("HTTP/1.1 204\r\n\r\n") == 204);
    CHECK_FALSE(http_status(""));
    CHECK_FALSE(http_status("HTTP/1.1 20"));
    CHECK_FALSE(http_status("SSH-2.0-OpenSSH"));
    CHECK_FALSE(http_status("HTTP/1.1 2000 x"));
    CHECK(http_request("PUT", "/actions", "localhost", R"({"action_type": "SendCtrlAltDel"})") ==
          "PUT /actions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n"
          "Content-Length: 33\r\n\r\n{\"action_type\": \"SendCtrlAltDel\"}");
    CHECK(http_request("GET", "/", "169.254.77.2", "") ==
          "GET / HTTP/1.1\r\nHost: 169.254.77.2\r\nConnection: close\r\n\r\n");
}

TEST_CASE("legacy bench: the report puts keel and crun side by side, median [min-max], with the ratio",
          "[bench][legacy]") {
    auto setup = setup_for_tests();
    // Interleaved as the bench takes them.
    const std::vector<LegacySample> samples{
        sample(kLegacyKeel, 1, 70'000, 20'000), sample(kLegacyCrun, 1, 3'000, 9'000),
        sample(kLegacyKeel, 2, 90'000, 21'000), sample(kLegacyCrun, 2, 2'000, 9'000),
        sample(kLegacyKeel, 3, 80'000, 22'000), sample(kLegacyCrun, 3, 4'000, 9'000)};
    const auto summary = summarize_legacy(samples);
    REQUIRE(summary.size() == 2);
    CHECK(summary[0].system == "keel");
    CHECK(summary[1].system == "crun");
    CHECK(summary[0].runs == 3);
    CHECK(summary[0].http_ms.median == 80'000);
    CHECK(summary[0].http_ms.min == 70'000);
    CHECK(summary[1].http_ms.median == 3'000);
    CHECK(summary[0].guest_ram_rss_kib.runs == 3);
    CHECK(summary[1].guest_ram_rss_kib.runs == 0);

    const auto text = legacy_report_text(setup, summary);
    INFO(text);
    CHECK(text.find("keel bench legacy: 3 runs of each system, interleaved") != std::string::npos);
    CHECK(text.find("launch -> HTTP 200, ms") != std::string::npos);
    CHECK(text.find("80000.0 [70000.0-90000.0]") != std::string::npos);
    CHECK(text.find("3000.0 [2000.0-4000.0]") != std::string::npos);
    CHECK(text.find("keel / crun (median / median): launch -> HTTP 200 26.67") != std::string::npos);
    CHECK(text.find("RSS 2.33") != std::string::npos);
    CHECK(text.find("EMULATED") == std::string::npos);
    setup.emulated = true;
    setup.host = "emulated (QEMU TCG)";
    CHECK(legacy_report_text(setup, summary).find("THE HOST IS EMULATED") != std::string::npos);

    const auto json = legacy_report_json(setup, summary, samples);
    CHECK(json.at("setup").at("emulated") == true);
    CHECK(json.at("setup").at("memory_mib") == 512);
    const auto& keel = json.at("systems").at("keel");
    CHECK(keel.at("runs") == 3);
    CHECK(keel.at("launch_to_http_200_ms").at("median") == 80'000.0);
    CHECK(keel.at("guest_ram_touched_kib").at("min") == 100'000.0);
    CHECK(json.at("systems").at("crun").at("guest_ram_touched_kib").is_null());
    REQUIRE(json.at("runs").size() == 6);
    CHECK(json.at("runs")[0].at("stop_reason") == "poweroff");
    CHECK_FALSE(json.at("runs")[1].contains("stop_reason"));
}

TEST_CASE("legacy bench: the image directory comes from the environment, else keel's cache", "[bench][legacy]") {
    const char* saved_dir = std::getenv("KEEL_LEGACY_IMAGE_DIR");
    const char* saved_cache = std::getenv("KEEL_CACHE_DIR");
    const std::string keep_dir = saved_dir != nullptr ? saved_dir : "";
    const std::string keep_cache = saved_cache != nullptr ? saved_cache : "";
    ::setenv("KEEL_LEGACY_IMAGE_DIR", "/images/legacy", 1);
    CHECK(default_legacy_image_dir() == "/images/legacy");
    ::unsetenv("KEEL_LEGACY_IMAGE_DIR");
    ::setenv("KEEL_CACHE_DIR", "/cache/keel", 1);
    CHECK(default_legacy_image_dir() == "/cache/keel/guest/legacy");
    if (saved_dir != nullptr) ::setenv("KEEL_LEGACY_IMAGE_DIR", keep_dir.c_str(), 1);
    if (saved_cache != nullptr) {
        ::setenv("KEEL_CACHE_DIR", keep_cache.c_str(), 1);
    } else {
        ::unsetenv("KEEL_CACHE_DIR");
    }
}
