#pragma once

// The VM's own cgroup v2 group, <root>/keel/<id>, with the limits of
// --cgroup written into it. The root is injectable so that tests can use a
// plain directory standing in for /sys/fs/cgroup.

#include <sys/types.h>

#include <string>
#include <vector>

#include "jail/jail_options.h"

namespace keel::jail {

class VmCgroup {
public:
    VmCgroup(std::string root, const std::string& id);

    [[nodiscard]] const std::string& path() const { return m_path; }

    // Checks that `root` is a cgroup v2 hierarchy offering each controller
    // the settings need, creates <root>/keel (shared by all jails) and
    // delegates those controllers to it and through it.
    void prepare_parent(const std::vector<CgroupSetting>& settings) const;
    // Creates <root>/keel/<id>; one that exists is an error (a jail of that
    // id runs, or was left behind).
    void create() const;
    // Writes each setting into its file.
    void apply(const std::vector<CgroupSetting>& settings) const;
    // Moves `pid` into the cgroup (its future children follow).
    void join(pid_t pid) const;

private:
    void write(const std::string& directory, const std::string& file, const std::string& value) const;

    std::string m_root;
    std::string m_parent;
    std::string m_path;
};

}  // namespace keel::jail
