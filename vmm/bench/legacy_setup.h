#pragma once

#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

// `keel bench legacy`: the legacy workload image (guest-images/build-legacy-image:
// Debian 12, sysvinit, lighttpd) booted by keel, against the same root file
// system's lighttpd run as a crun container, interleaved. The pure parts
// (commands, addresses, the container's configuration) live in
// legacy_systems.cc and are unit-tested; legacy_bench.cc runs them.
namespace keel::bench {

inline constexpr const char* kLegacyKeel = "keel";
inline constexpr const char* kLegacyCrun = "crun";

struct LegacySetup {
    // The image's directory; empty: $KEEL_LEGACY_IMAGE_DIR, else the cache
    // build-legacy-image fills (see default_legacy_image_dir()).
    std::string image_dir;
    unsigned vcpus = 2;                           // as the legacy-image test boots it
    uint64_t memory_bytes = uint64_t{512} << 20;  // the same
    unsigned runs = 3;
    // Per run, launch -> exit. The emulated sandbox boots the image in one to
    // two minutes; the default leaves room for a slow one.
    unsigned timeout_seconds = 600;
    std::string json_path;
    // Filled in by the bench.
    std::string kernel;
    std::string initrd;
    std::string rootfs;
    std::string page_marker;
    std::string keel_binary;
    std::string host = "bare metal";
    bool emulated = false;
};

// $KEEL_LEGACY_IMAGE_DIR, else $KEEL_CACHE_DIR/guest/legacy, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/keel/guest/legacy (what scripts/lib/common.sh's
// keel_cache_dir() and build-legacy-image use).
[[nodiscard]] std::string default_legacy_image_dir();

// The link-local addresses and names of the bench's private network: one
// network namespace of the bench's own holds the keel VM's TAP and the
// host end of the container's veth pair; the container gets a namespace of
// its own with the other end. Nothing is added to the host's namespaces.
struct LegacyNet {
    std::string bench_ns;      // the bench (and keel, and the HTTP probes) run in it
    std::string container_ns;  // the container's network namespace
    std::string tap = "kltap0";
    std::string veth_host = "klveth0";
    std::string veth_container = "eth0";
    std::string tap_host_cidr = "169.254.77.1/30";
    std::string guest_address = "169.254.77.2";  // keel.net=eth0=ADDR/30
    std::string veth_host_cidr = "169.254.77.5/30";
    std::string container_cidr = "169.254.77.6/30";
    std::string container_address = "169.254.77.6";
};

// Pure: the plan for the bench process `pid` (namespace names carry it, so
// two benches never share one).
[[nodiscard]] LegacyNet legacy_net(pid_t pid);

// Pure: the `ip` command lines that build the network once both namespaces
// exist (`ip netns add` for each comes first), in order.
[[nodiscard]] std::vector<std::vector<std::string>> legacy_net_commands(const LegacyNet& net);

// Pure: the guest's kernel command line: the legacy-image test's, with the
// guest's address.
[[nodiscard]] std::string legacy_vm_cmdline(const LegacyNet& net);

// Pure: `keel run` of one VM booting `disk` (a copy of rootfs.ext4).
[[nodiscard]] std::vector<std::string> legacy_keel_command(const LegacySetup& setup, const LegacyNet& net,
                                                           const std::string& disk, const std::string& api_socket,
                                                           const std::string& stats_json);

// Pure: the command that copies the ext4 image's files (owners, modes,
// symbolic links; no device nodes) into the existing directory `dir`:
// e2fsprogs' debugfs reads the image itself, so there is no loop device and
// no mount (neither of which every sandbox allows). Throws keel::Error for
// a directory name debugfs's command parser cannot take (a '"' or a newline).
[[nodiscard]] std::vector<std::string> rootfs_extract_command(const std::string& image, const std::string& dir);

// A directory the service writes to, as the image has it. The container's
// root is read-only; each of these is a fresh tmpfs with the image's owner
// and mode, so every run starts from the image's state, as a booted VM does
// (its /run, /tmp are tmpfs too; its disk is a fresh copy).
struct WritableDir {
    std::string path;  // inside the container
    uid_t uid = 0;
    gid_t gid = 0;
    unsigned mode = 0755;
};

// The directories lighttpd writes to with Debian's configuration (its pid
// file in /run, its error log in /var/log/lighttpd) and the usual scratch
// ones, parents before children.
[[nodiscard]] const std::vector<std::string>& legacy_writable_paths();

// Pure: the bundle's config.json: keel bench compare's (crun spec's
// defaults, read-only root) with lighttpd in the foreground as the process,
// the capabilities container engines give a service by default (lighttpd
// binds port 80 as root and then switches to www-data), the tmpfs mounts of
// `writable`, and the network namespace at `netns_path` joined rather than
// created.
[[nodiscard]] nlohmann::json legacy_oci_config(const std::string& netns_path, const std::vector<WritableDir>& writable);

inline constexpr const char* kLighttpd = "/usr/sbin/lighttpd";

// One run of one system.
struct LegacySample {
    std::string system;
    unsigned run = 0;
    double http_ms = 0;  // launch -> the first HTTP 200 carrying the page marker
    double exit_ms = 0;  // launch -> the process ended
    double stop_ms = 0;  // stop asked (SendCtrlAltDel / crun kill) -> the process ended
    unsigned http_attempts = 0;
    // Host memory at the first 200, KiB: every process of the system, guest
    // RAM apart (keel), and the guest RAM the guest touched.
    uint64_t overhead_rss_kib = 0;
    uint64_t overhead_pss_kib = 0;
    uint64_t guest_ram_rss_kib = 0;
    unsigned processes = 0;
    std::string stop_reason;  // keel's, from --stats-json ("poweroff")
};

}  // namespace keel::bench
