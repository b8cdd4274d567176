#pragma once

// What `keel jail` is asked to do, checked before anything on the host is
// touched (see docs/security.md, "keel jail").

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keel::jail {

// One --cgroup KEY=VALUE: a cgroup v2 interface file of the VM's cgroup
// ("memory.max", "cpu.max", "pids.max", ...) and what is written to it.
struct CgroupSetting {
    std::string file;
    std::string value;

    // The controller the file belongs to ("memory" for memory.max), which the
    // parent cgroups must delegate.
    [[nodiscard]] std::string controller() const { return file.substr(0, file.find('.')); }
};

// --resource-limit: Firecracker's jailer names (fsize, no-file).
struct ResourceLimits {
    uint64_t open_files = 2048;         // RLIMIT_NOFILE: keel needs a few dozen fds per VM
    std::optional<uint64_t> file_size;  // RLIMIT_FSIZE; unset: unlimited (disk images grow)
};

struct JailOptions {
    std::string id;
    uid_t uid = 0;
    gid_t gid = 0;
    std::string chroot_base = "/srv/jail";
    std::string cgroup_root = "/sys/fs/cgroup";
    std::vector<CgroupSetting> cgroups;
    ResourceLimits limits;
    std::string netns;  // a network namespace file (/var/run/netns/NAME); empty: stay
    bool new_pid_ns = false;
    bool daemonize = false;
    std::string exec_file = "/proc/self/exe";  // the keel binary bind-mounted into the jail
};

// Each throws keel::Error with a one-line message naming the option.
// An id: 1-64 characters of A-Z a-z 0-9 and '-', not starting with '-'.
void validate_id(std::string_view id);
// A uid or gid: a decimal number below 2^32-1 (which means "unchanged").
[[nodiscard]] uint32_t parse_numeric_id(std::string_view text, std::string_view option);
// KEY=VALUE where KEY is "<controller>.<name>" of [a-z_.] without '/'.
[[nodiscard]] CgroupSetting parse_cgroup_setting(std::string_view text);
// fsize=N or no-file=N, applied to `limits`.
void apply_resource_limit(std::string_view text, ResourceLimits& limits);
// Everything together: id, absolute chroot base and cgroup root, no file given
// twice in --cgroup.
void validate_options(const JailOptions& options);

// <chroot_base>/keel/<id>: the VM's directory; its root/ becomes '/'.
[[nodiscard]] std::string jail_dir(const JailOptions& options);
[[nodiscard]] std::string jail_root(const JailOptions& options);

}  // namespace keel::jail
