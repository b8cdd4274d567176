#include "virtio/block/disk_image.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <bit>
#include <cerrno>

#include "common/error.h"

namespace keel::block {
namespace {

// The probe punches a hole this far past the end of the file, where nothing
// is stored, so the image's contents never change.
constexpr uint64_t kProbeLength = 64 * 1024;
constexpr uint32_t kMaxReportedBlock = 64 * 1024;

std::string quoted(const std::string& path) {
    return "'" + path + "'";
}

// Block sizes the guest can use: a power of two in [512, 64 KiB], else 512.
uint32_t sane_block_size(uint64_t value) {
    if (value < DiskImage::kSectorSize || value > kMaxReportedBlock || !std::has_single_bit(value)) {
        return DiskImage::kSectorSize;
    }
    return static_cast<uint32_t>(value);
}

template <typename T>
T ioctl_value(int fd, unsigned long request, T fallback) {
    T value{};
    if (::ioctl(fd, request, &value) != 0) return fallback;
    return value;
}

}  // namespace

DiskImage DiskImage::open(const std::string& path, DiskAccess access) {
    DiskImage image;
    image.m_path = path;
    image.m_access = access;
    // Read-only disks are never opened for writing, so no bug above this
    // line can modify them.
    const int flags = (access == DiskAccess::ReadOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    image.m_fd = UniqueFd(::open(path.c_str(), flags));
    if (!image.m_fd.valid()) {
        const int err = errno;
        throw_errno("cannot open disk image " + quoted(path) +
                        (access == DiskAccess::ReadWrite && (err == EACCES || err == EROFS)
                             ? " for writing (add readonly=on to use it read-only)"
                             : ""),
                    err);
    }
    image.query_size_and_geometry();
    image.lock();
    if (access == DiskAccess::ReadWrite) image.probe_punch_hole();
    return image;
}

bool DiskImage::is_same_file(const std::string& path) const {
    struct stat mine {}, theirs {};
    if (::fstat(m_fd.get(), &mine) != 0 || ::stat(path.c_str(), &theirs) != 0) return false;
    return mine.st_dev == theirs.st_dev && mine.st_ino == theirs.st_ino;
}

void DiskImage::refresh() { query_size_and_geometry(); }

void DiskImage::query_size_and_geometry() {
    struct stat st {};
    if (::fstat(m_fd.get(), &st) != 0) throw_errno("cannot stat disk image " + quoted(m_path));
    if (S_ISREG(st.st_mode)) {
        m_kind = DiskKind::RegularFile;
        m_size = static_cast<uint64_t>(st.st_size);
        // A file system block is the unit below which a guest write makes the
        // host read-modify-write its page cache: report it as the physical
        // block (virtio 1.2 §5.2.4 topology).
        m_geometry.physical_block_size = sane_block_size(static_cast<uint64_t>(st.st_blksize));
        m_geometry.min_io_size = m_geometry.physical_block_size;
    } else if (S_ISBLK(st.st_mode)) {
        m_kind = DiskKind::BlockDevice;
        uint64_t bytes = 0;
        if (::ioctl(m_fd.get(), BLKGETSIZE64, &bytes) != 0) {
            throw_errno("cannot read the size of block device " + quoted(m_path) + " (BLKGETSIZE64)");
        }
        m_size = bytes;
        m_geometry.logical_block_size =
            sane_block_size(static_cast<uint64_t>(std::max(ioctl_value<int>(m_fd.get(), BLKSSZGET, 512), 0)));
        m_geometry.physical_block_size = std::max(m_geometry.logical_block_size,
                                                  sane_block_size(ioctl_value<unsigned>(m_fd.get(), BLKPBSZGET, 512)));
        m_geometry.min_io_size = ioctl_value<unsigned>(m_fd.get(), BLKIOMIN, 0);
        m_geometry.opt_io_size = ioctl_value<unsigned>(m_fd.get(), BLKIOOPT, 0);
    } else {
        throw Error("disk image " + quoted(m_path) + " is neither a regular file nor a block device");
    }
    if (m_size < kSectorSize) {
        throw Error("disk image " + quoted(m_path) + " is smaller than one 512-byte sector (" + std::to_string(m_size) +
                    " bytes)");
    }
    if (m_size % kSectorSize != 0) {
        spdlog::warn("disk image '{}': size {} is not a multiple of 512; the guest does not see the last {} bytes",
                     m_path, m_size, m_size % kSectorSize);
    }
    if (m_size % m_geometry.logical_block_size != 0) {
        m_geometry.logical_block_size = kSectorSize;  // a capacity must be whole logical blocks
    }
}

void DiskImage::lock() {
    // Open-file-description locks belong to this open(), not to the process:
    // they conflict with locks on any other open() of the file, in this
    // process or another, and go away when the fd is closed.
    struct flock lk {};
    lk.l_type = m_access == DiskAccess::ReadOnly ? F_RDLCK : F_WRLCK;
    lk.l_whence = SEEK_SET;
    lk.l_start = 0;
    lk.l_len = 0;  // the whole file, however large it grows
    if (::fcntl(m_fd.get(), F_OFD_SETLK, &lk) == 0) return;
    const int err = errno;
    if (err == EAGAIN || err == EACCES) {
        throw Error("disk image " + quoted(m_path) + " is in use by another process (locked)");
    }
    // Some file systems (older NFS, FUSE, 9p without locking) do not do OFD
    // locks; running unprotected is better than not running.
    spdlog::warn("disk image '{}': cannot lock it ({}); nothing stops another process from using it", m_path,
                 errno_message("F_OFD_SETLK", err));
}

void DiskImage::probe_punch_hole() {
    if (m_kind == DiskKind::BlockDevice) {
        // fallocate on a block device (Linux >= 4.9) zeroes the range and
        // unmaps it when the device can; nothing to probe without writing.
        m_punch_holes = true;
        return;
    }
    const uint64_t offset = (m_size + kProbeLength - 1) / kProbeLength * kProbeLength;
    m_punch_holes = ::fallocate(m_fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                                static_cast<off_t>(kProbeLength)) == 0;
    if (!m_punch_holes) {
        spdlog::info("disk image '{}': the file system cannot punch holes ({}); the disk offers no discard", m_path,
                     errno_message("fallocate", errno));
    }
}

}  // namespace keel::block
