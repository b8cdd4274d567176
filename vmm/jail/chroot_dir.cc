#include "jail/chroot_dir.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/error.h"
#include "common/fd.h"

namespace keel::jail {

namespace {

bool read_exactly(int fd, void* buffer, size_t size, off_t offset) {
    return ::pread(fd, buffer, size, offset) == static_cast<ssize_t>(size);
}

}  // namespace

void create_jail_dir(const std::string& jail_dir, uid_t uid, gid_t gid) {
    std::error_code error;
    std::filesystem::create_directories(std::filesystem::path(jail_dir).parent_path(), error);
    if (error)
        throw Error("cannot create '" + std::filesystem::path(jail_dir).parent_path().string() +
                    "': " + error.message());
    if (::mkdir(jail_dir.c_str(), 0755) != 0) {
        if (errno == EEXIST) {
            throw Error("'" + jail_dir + "' already exists (a jail with this id runs, or was left behind: remove it)");
        }
        throw_errno("cannot create '" + jail_dir + "'");
    }
    const auto root = jail_dir + "/root";
    if (::mkdir(root.c_str(), 0755) != 0) throw_errno("cannot create '" + root + "'");
    if (::chown(root.c_str(), uid, gid) != 0) throw_errno("cannot chown '" + root + "'");
}

bool needs_interpreter(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) throw_errno("cannot open '" + path + "'");
    Elf64_Ehdr header{};
    if (!read_exactly(fd.get(), &header, sizeof header, 0) || std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 ||
        header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_phentsize != sizeof(Elf64_Phdr)) {
        throw Error("'" + path + "' is not a 64-bit ELF executable");
    }
    for (unsigned i = 0; i < header.e_phnum; ++i) {
        Elf64_Phdr segment{};
        const auto offset = static_cast<off_t>(header.e_phoff + i * sizeof segment);
        if (!read_exactly(fd.get(), &segment, sizeof segment, offset)) {
            throw Error("'" + path + "': truncated ELF program headers");
        }
        if (segment.p_type == PT_INTERP) return true;
    }
    return false;
}

JailFile jailed_keel(const std::string& exec_file) {
    // mount(2) refuses /proc/self/exe itself as a bind source (EINVAL): it
    // wants the file the link names.
    std::error_code error;
    const auto target = std::filesystem::canonical(exec_file, error);
    const std::string path = error ? exec_file : target.string();
    if (needs_interpreter(path)) {
        throw Error("'" + exec_file +
                    "' is dynamically linked and its libraries are not in the jail; build keel with "
                    "-DKEEL_STATIC=ON (scripts/build's default)");
    }
    return {path, kJailedKeel, true};
}

void check_host_files(const std::vector<JailFile>& files) {
    for (const auto& file : files) {
        struct stat info {};
        if (::stat(file.host_path.c_str(), &info) != 0) {
            throw_errno("cannot use '" + file.host_path + "' (for " + file.jail_path + ")");
        }
        if (!S_ISREG(info.st_mode) && !S_ISBLK(info.st_mode)) {
            throw Error("'" + file.host_path + "' (for " + file.jail_path + ") is neither a file nor a block device");
        }
    }
}

void create_mount_points(const std::string& root, const std::vector<JailFile>& files) {
    for (const auto& file : files) {
        const auto target = root + file.jail_path;
        UniqueFd fd(::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!fd.valid()) throw_errno("cannot create '" + target + "'");
    }
}

}  // namespace keel::jail
