#pragma once

// The jail's directory on the host: <chroot_base>/keel/<id>/root with an
// empty file for each host file (keel's binary included) to be bind-mounted
// over (see mount_namespace.h).

#include <sys/types.h>

#include <string>
#include <vector>

#include "jail/run_arguments.h"

namespace keel::jail {

// Where keel lives inside the jail.
inline constexpr const char* kJailedKeel = "/keel";

// Creates `jail_dir` and its root/ (owned by uid:gid, so keel may create an
// API socket there). An existing `jail_dir` is an error: a jail with this id
// runs or was left behind, and reusing it would mix two VMs' files.
void create_jail_dir(const std::string& jail_dir, uid_t uid, gid_t gid);

// keel itself, bind-mounted read-only at /keel like the VM's files (a copy
// would cost ~100 MB per VM for a build with debug info). A dynamically linked
// keel cannot run where its libraries are not: that is refused.
[[nodiscard]] JailFile jailed_keel(const std::string& exec_file);

// Whether the ELF file at `path` asks for a program interpreter (is
// dynamically linked). Throws keel::Error when it is not a readable ELF file.
[[nodiscard]] bool needs_interpreter(const std::string& path);

// Each host file must exist (and be a file or a block device) before the jail
// is built around it.
void check_host_files(const std::vector<JailFile>& files);

// Empty files at each JailFile's jail path under `root`, for the bind mounts.
void create_mount_points(const std::string& root, const std::vector<JailFile>& files);

}  // namespace keel::jail
