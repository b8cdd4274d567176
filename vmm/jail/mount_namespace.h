#pragma once

// A mount namespace of keel's own whose root is the jail's root/: the host's
// files keel needs are bind-mounted in, pivot_root makes root/ '/', and the
// host's tree is detached, so nothing outside the jail can be named again.
// Then the device nodes keel opens are made inside.

#include <sys/types.h>

#include <string>
#include <vector>

#include "jail/run_arguments.h"

namespace keel::jail {

// A character device copied into the jail: its host path, the same inside.
struct DeviceNode {
    std::string path;  // "/dev/kvm"
    dev_t rdev = 0;
};

// The host's device numbers of /dev/kvm, /dev/null (for --daemonize) and, when
// `with_tun`, /dev/net/tun (read before the host's /dev is out of reach).
[[nodiscard]] std::vector<DeviceNode> host_devices(bool with_tun);

// unshare(CLONE_NEWNS), no propagation back to the host, root/ bind-mounted
// onto itself (pivot_root wants a mount point) and each file bind-mounted
// (read-only when it is).
void enter_mount_namespace(const std::string& root, const std::vector<JailFile>& files);

// pivot_root into `root` and detach the old root.
void pivot_into(const std::string& root);

// Makes /dev/... for each device inside the (new) root, owned by uid:gid, mode 0600.
void make_devices(const std::vector<DeviceNode>& devices, uid_t uid, gid_t gid);

}  // namespace keel::jail
