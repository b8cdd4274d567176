#include "jail/chroot_dir.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/sendfile.h>
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

void copy_keel(const std::string& exec_file, const std::string& root) {
    if (needs_interpreter(exec_file)) {
        throw Error("'" + exec_file +
                    "' is dynamically linked and its libraries are not in the jail; build keel with "
                    "-DKEEL_STATIC=ON (scripts/build's default)");
    }
    UniqueFd in(::open(exec_file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in.valid()) throw_errno("cannot open '" + exec_file + "'");
    struct stat info {};
    if (::fstat(in.get(), &info) != 0) throw_errno("cannot stat '" + exec_file + "'");
    const auto target = root + kJailedKeel;
    UniqueFd out(::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0555));
    if (!out.valid()) throw_errno("cannot create '" + target + "'");
    off_t offset = 0;
    while (offset < info.st_size) {
        const auto n = ::sendfile(out.get(), in.get(), &offset, static_cast<size_t>(info.st_size - offset));
        if (n <= 0)
            throw Error(errno_message("cannot copy '" + exec_file + "' to '" + target + "'", n == 0 ? EIO : errno));
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
