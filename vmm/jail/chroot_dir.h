#pragma once

// The jail's directory on the host: <chroot_base>/keel/<id>/root with keel's
// binary copied in and an empty file for each host file to be bind-mounted
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

// Copies `exec_file` (keel itself) to <root>/keel, mode 0555. A dynamically
// linked keel cannot run where its libraries are not: that is refused.
void copy_keel(const std::string& exec_file, const std::string& root);

// Whether the ELF file at `path` asks for a program interpreter (is
// dynamically linked). Throws keel::Error when it is not a readable ELF file.
[[nodiscard]] bool needs_interpreter(const std::string& path);

// Empty files at each JailFile's jail path under `root`, for the bind mounts.
void create_mount_points(const std::string& root, const std::vector<JailFile>& files);

}  // namespace keel::jail
