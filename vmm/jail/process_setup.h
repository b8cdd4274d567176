#pragma once

// What the jailing process does to itself: no inherited fds or environment,
// a network namespace, a pid namespace, resource limits, no privileges, and
// finally keel in its place.

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "jail/jail_options.h"

namespace keel::jail {

// Closes every fd above stderr (a TAP, a socket or a file the caller held
// must not reach the VMM).
void close_inherited_fds();

// setns() into the network namespace file at `path`.
void join_network_namespace(const std::string& path);

// unshare(CLONE_NEWPID) and fork: the child (pid 1 of the new namespace)
// gets nullopt and goes on jailing itself; the parent forwards SIGTERM,
// SIGINT and SIGHUP to it, waits, and gets the exit status to return (128+N
// for a child killed by signal N) — or 0 at once when `detach` (--daemonize).
[[nodiscard]] std::optional<int> fork_into_pid_namespace(bool detach);

void set_resource_limits(const ResourceLimits& limits);

// A session of its own and stdin/stdout/stderr on /dev/null.
void daemonize();

// PR_SET_NO_NEW_PRIVS, no supplementary groups, then gid and uid.
void drop_privileges(uid_t uid, gid_t gid);

// execve(`path`, argv, no environment); throws only when it fails.
[[noreturn]] void exec_keel(const std::string& path, const std::vector<std::string>& args);

}  // namespace keel::jail
