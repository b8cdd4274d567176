#include "jail/jail.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "common/error.h"
#include "jail/cgroup.h"
#include "jail/chroot_dir.h"
#include "jail/mount_namespace.h"
#include "jail/process_setup.h"

namespace keel::jail {

namespace {

// Runs one step; its failure becomes "jail: <step>: <reason>".
template <class Step>
auto step(const char* name, Step&& action) {
    try {
        return action();
    } catch (const Error& e) {
        throw Error(std::string("jail: ") + name + ": " + e.what());
    }
}

// The jail directory and cgroup of a jail that failed before keel could
// have used them go again, so that the same id can be tried once more.
struct Rollback {
    std::string jail_dir;
    std::string cgroup;
    bool armed = true;
    ~Rollback() {
        if (!armed) return;
        std::error_code ignored;
        if (!jail_dir.empty()) std::filesystem::remove_all(jail_dir, ignored);
        if (!cgroup.empty()) ::rmdir(cgroup.c_str());
    }
};

}  // namespace

int run_jail(const JailRequest& request) {
    const auto& options = request.options;
    step("options", [&] { validate_options(options); });
    step("fds", [] {
        close_inherited_fds();
        if (::clearenv() != 0) throw Error("cannot clear the environment");
    });
    // Before anything is created: a wrong --netns leaves nothing behind.
    if (!options.netns.empty()) step("netns", [&] { join_network_namespace(options.netns); });

    const auto devices = step("devices", [&] { return host_devices(request.uses_tap); });

    const auto root = jail_root(options);
    auto files = request.run.files;
    Rollback rollback;
    step("chroot", [&] {
        files.push_back(jailed_keel(options.exec_file));
        check_host_files(files);
        create_jail_dir(jail_dir(options), options.uid, options.gid);
        rollback.jail_dir = jail_dir(options);
        create_mount_points(root, files);
    });
    if (!options.cgroups.empty()) {
        step("cgroup", [&] {
            const VmCgroup cgroup(options.cgroup_root, options.id);
            cgroup.prepare_parent(options.cgroups);
            cgroup.create();
            rollback.cgroup = cgroup.path();
            cgroup.apply(options.cgroups);
            cgroup.join(::getpid());
        });
    }
    rollback.armed = false;

    if (options.new_pid_ns) {
        const auto parent_status = step("pid namespace", [&] { return fork_into_pid_namespace(options.daemonize); });
        if (parent_status) return *parent_status;
    }
    step("mount namespace", [&] { enter_mount_namespace(root, files); });
    step("pivot_root", [&] { pivot_into(root); });
    step("devices", [&] { make_devices(devices, options.uid, options.gid); });
    step("rlimits", [&] { set_resource_limits(options.limits); });
    if (options.daemonize) step("daemonize", [] { daemonize(); });
    step("privileges", [&] { drop_privileges(options.uid, options.gid); });
    std::vector<std::string> args{"run"};
    args.insert(args.end(), request.run.args.begin(), request.run.args.end());
    try {
        exec_keel(kJailedKeel, args);
    } catch (const Error& e) {
        throw Error(std::string("jail: exec: ") + e.what());
    }
}

}  // namespace keel::jail
