#include "jail/mount_namespace.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "common/error.h"

namespace keel::jail {

namespace {

constexpr const char* kOldRoot = "old_root";

void make_directory(const std::string& path) {
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) throw_errno("cannot create '" + path + "'");
}

}  // namespace

std::vector<DeviceNode> host_devices(bool with_tun) {
    std::vector<std::string> paths{"/dev/kvm", "/dev/null"};
    if (with_tun) paths.emplace_back("/dev/net/tun");
    std::vector<DeviceNode> devices;
    for (const auto& path : paths) {
        struct stat info {};
        if (::stat(path.c_str(), &info) != 0) throw_errno("cannot stat host device '" + path + "'");
        if (!S_ISCHR(info.st_mode)) throw Error("host '" + path + "' is not a character device");
        devices.push_back({path, info.st_rdev});
    }
    return devices;
}

void enter_mount_namespace(const std::string& root, const std::vector<JailFile>& files) {
    if (::unshare(CLONE_NEWNS) != 0) throw_errno("cannot unshare the mount namespace");
    // Mounts made from here on stay in this namespace.
    if (::mount(nullptr, "/", nullptr, MS_SLAVE | MS_REC, nullptr) != 0) {
        throw_errno("cannot make '/' a slave mount");
    }
    if (::mount(root.c_str(), root.c_str(), nullptr, MS_BIND, nullptr) != 0) {
        throw_errno("cannot bind-mount '" + root + "' onto itself");
    }
    for (const auto& file : files) {
        const auto target = root + file.jail_path;
        if (::mount(file.host_path.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
            throw_errno("cannot bind-mount '" + file.host_path + "' to '" + file.jail_path + "'");
        }
        if (file.read_only && ::mount(nullptr, target.c_str(), nullptr,
                                      MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
            throw_errno("cannot make '" + file.jail_path + "' read-only");
        }
    }
}

void pivot_into(const std::string& root) {
    if (::chdir(root.c_str()) != 0) throw_errno("cannot enter '" + root + "'");
    make_directory(kOldRoot);
    if (::syscall(SYS_pivot_root, ".", kOldRoot) != 0) throw_errno("pivot_root to '" + root + "' failed");
    if (::chdir("/") != 0) throw_errno("cannot enter the new '/'");
    const auto old_root = std::string("/") + kOldRoot;
    if (::umount2(old_root.c_str(), MNT_DETACH) != 0) throw_errno("cannot detach the host's root");
    if (::rmdir(old_root.c_str()) != 0) throw_errno("cannot remove '" + old_root + "'");
}

void make_devices(const std::vector<DeviceNode>& devices, uid_t uid, gid_t gid) {
    for (const auto& device : devices) {
        for (auto slash = device.path.find('/', 1); slash != std::string::npos;
             slash = device.path.find('/', slash + 1)) {
            make_directory(device.path.substr(0, slash));
        }
        if (::mknod(device.path.c_str(), S_IFCHR | 0600, device.rdev) != 0) {
            // Seen as ENXIO on 9p: the jail's directory is on a file system that keeps no device nodes.
            throw Error(errno_message("cannot make '" + device.path + "'") +
                        " (the file system of --chroot-base must hold device nodes: not 9p, NFS or a nodev mount)");
        }
        // mknod's mode went through the umask.
        if (::chmod(device.path.c_str(), 0600) != 0 || ::chown(device.path.c_str(), uid, gid) != 0) {
            throw_errno("cannot give '" + device.path + "' to " + std::to_string(uid) + ":" + std::to_string(gid));
        }
    }
}

}  // namespace keel::jail
