#include <cstdio>
#include <cstdlib>

#include "bench/legacy_setup.h"
#include "bench/oci_bundle.h"
#include "common/error.h"

namespace keel::bench {

std::string default_legacy_image_dir() {
    const auto env = [](const char* name) -> std::string {
        const char* value = std::getenv(name);
        return value != nullptr ? value : "";
    };
    if (auto dir = env("KEEL_LEGACY_IMAGE_DIR"); !dir.empty()) return dir;
    std::string cache = env("KEEL_CACHE_DIR");
    if (cache.empty()) {
        cache = env("XDG_CACHE_HOME");
        if (cache.empty()) cache = env("HOME") + "/.cache";
        cache += "/keel";
    }
    return cache + "/guest/legacy";
}

LegacyNet legacy_net(pid_t pid) {
    LegacyNet net;
    net.bench_ns = "keel-legacy-" + std::to_string(pid);
    net.container_ns = net.bench_ns + "-ctr";
    return net;
}

std::vector<std::vector<std::string>> legacy_net_commands(const LegacyNet& net) {
    const std::string& b = net.bench_ns;
    const std::string& c = net.container_ns;
    return {
        {"ip", "-n", b, "link", "set", "lo", "up"},
        // Multi-queue: keel attaches one queue per vCPU.
        {"ip", "-n", b, "tuntap", "add", "dev", net.tap, "mode", "tap", "multi_queue"},
        {"ip", "-n", b, "addr", "add", net.tap_host_cidr, "dev", net.tap},
        {"ip", "-n", b, "link", "set", net.tap, "up"},
        {"ip", "-n", b, "link", "add", net.veth_host, "type", "veth", "peer", "name", net.veth_container, "netns", c},
        {"ip", "-n", b, "addr", "add", net.veth_host_cidr, "dev", net.veth_host},
        {"ip", "-n", b, "link", "set", net.veth_host, "up"},
        {"ip", "-n", c, "link", "set", "lo", "up"},
        {"ip", "-n", c, "addr", "add", net.container_cidr, "dev", net.veth_container},
        {"ip", "-n", c, "link", "set", net.veth_container, "up"},
    };
}

std::string legacy_vm_cmdline(const LegacyNet& net) {
    return "console=ttyS0 reboot=k panic=-1 root=/dev/vda rw keel.net=eth0=" + net.guest_address + "/30";
}

std::vector<std::string> legacy_keel_command(const LegacySetup& setup, const LegacyNet& net, const std::string& disk,
                                             const std::string& api_socket, const std::string& stats_json) {
    return {setup.keel_binary, "run",
            "--kernel",        setup.kernel,
            "--initrd",        setup.initrd,
            "--cmdline",       legacy_vm_cmdline(net),
            "--cpus",          std::to_string(setup.vcpus),
            "--memory",        std::to_string(setup.memory_bytes >> 20) + "M",
            "--disk",          "path=" + disk,
            "--net",           "tap=" + net.tap,
            "--api-sock",      api_socket,
            "--stats-json",    stats_json};
}

std::vector<std::string> rootfs_extract_command(const std::string& image, const std::string& dir) {
    if (dir.find_first_of("\"\n") != std::string::npos) {
        throw Error("cannot extract the legacy image into '" + dir +
                    "': debugfs cannot take a '\"' or a newline there (set TMPDIR to a plainer directory)");
    }
    // rdump of "/" writes the root's entries straight into `dir`; the quotes
    // let `dir` hold spaces.
    return {"debugfs", "-R", "rdump / \"" + dir + "\"", image};
}

const std::vector<std::string>& legacy_writable_paths() {
    static const std::vector<std::string> paths{"/run", "/run/lighttpd", "/tmp", "/var/log", "/var/log/lighttpd"};
    return paths;
}

nlohmann::json legacy_oci_config(const std::string& netns_path, const std::vector<WritableDir>& writable) {
    using nlohmann::json;
    json config = oci_config(kLighttpd);
    // As a container image runs a service: in the foreground, the
    // configuration the VM's init script uses.
    config["process"]["args"] = json::array({kLighttpd, "-D", "-f", "/etc/lighttpd/lighttpd.conf"});
    config["process"]["env"] = json::array({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"});
    // Docker's and Podman's default set: crun spec's three would not let
    // lighttpd switch to www-data.
    const json capabilities = json::array({"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                                           "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                                           "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"});
    config["process"]["capabilities"] = {
        {"bounding", capabilities}, {"effective", capabilities}, {"permitted", capabilities}};
    config["hostname"] = "keel-legacy";
    for (const auto& dir : writable) {
        char mode[16];
        std::snprintf(mode, sizeof mode, "mode=%04o", dir.mode & 07777U);
        config["mounts"].push_back({{"destination", dir.path},
                                    {"type", "tmpfs"},
                                    {"source", "tmpfs"},
                                    {"options", json::array({"nosuid", "nodev", mode, "uid=" + std::to_string(dir.uid),
                                                             "gid=" + std::to_string(dir.gid)})}});
    }
    for (auto& ns : config["linux"]["namespaces"]) {
        if (ns["type"] == "network") ns["path"] = netns_path;
    }
    return config;
}

}  // namespace keel::bench
