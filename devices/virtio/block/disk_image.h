#pragma once

#include <cstdint>
#include <string>

#include "common/fd.h"
#include "virtio/block/disk_options.h"

namespace keel::block {

// What kind of file backs a disk.
enum class DiskKind : uint8_t { RegularFile, BlockDevice };

// Block sizes as the guest should see them (virtio 1.2 §5.2.4 blk_size and
// topology). Protocol units stay 512-byte sectors whatever these say.
struct DiskGeometry {
    uint32_t logical_block_size = 512;   // BLKSSZGET for block devices, 512 for files
    uint32_t physical_block_size = 512;  // BLKPBSZGET, or the file system's block size (st_blksize)
    uint32_t min_io_size = 0;            // bytes, BLKIOMIN (0: unknown)
    uint32_t opt_io_size = 0;            // bytes, BLKIOOPT (0: unknown)
};

// An opened disk image: a regular file or a block device, opened O_CLOEXEC
// and O_RDONLY (read-only disks are never opened for writing) or O_RDWR, and
// locked with an open-file-description lock (F_OFD_SETLK) over the whole
// file — a write lock for writable disks, a read lock for read-only ones — so
// two keel processes never write the same image, and nobody writes an image
// another one reads. The lock lives as long as the file descriptor.
class DiskImage final {
public:
    static constexpr uint32_t kSectorSize = 512;

    // Throws keel::Error naming the file: it cannot be opened, is neither a
    // regular file nor a block device, is smaller than one sector, or is
    // locked by another process ("disk image 'x' is in use by another process
    // (locked)"). A file system without OFD locks only gets a warning.
    static DiskImage open(const std::string& path, DiskAccess access);

    DiskImage(DiskImage&&) noexcept = default;
    DiskImage& operator=(DiskImage&&) noexcept = default;
    DiskImage(const DiskImage&) = delete;
    DiskImage& operator=(const DiskImage&) = delete;
    ~DiskImage() = default;

    [[nodiscard]] int fd() const { return m_fd.get(); }
    [[nodiscard]] const std::string& path() const { return m_path; }
    [[nodiscard]] DiskAccess access() const { return m_access; }
    [[nodiscard]] bool read_only() const { return m_access == DiskAccess::ReadOnly; }
    [[nodiscard]] DiskKind kind() const { return m_kind; }
    [[nodiscard]] uint64_t size_bytes() const { return m_size; }
    // Whole 512-byte sectors; a partial sector at the end is not visible
    // (logged at open).
    [[nodiscard]] uint64_t capacity_sectors() const { return m_size / kSectorSize; }
    [[nodiscard]] const DiskGeometry& geometry() const { return m_geometry; }
    // fallocate(PUNCH_HOLE | KEEP_SIZE) is accepted (probed at open on
    // writable regular files; assumed for block devices, where the kernel
    // maps it to a zero-out). Discard and write-zeroes with UNMAP use it.
    [[nodiscard]] bool can_punch_holes() const { return m_punch_holes; }

    // Whether `path` names this very file (same device and inode): a client
    // that resized the image in place asks keel to look again, and opening it
    // a second time would collide with this descriptor's own lock.
    [[nodiscard]] bool is_same_file(const std::string& path) const;
    // Reads the size and geometry again (the file grew or shrank under us).
    // Throws keel::Error naming the file.
    void refresh();

private:
    DiskImage() = default;
    void query_size_and_geometry();
    void lock();
    void probe_punch_hole();

    UniqueFd m_fd;
    std::string m_path;
    DiskAccess m_access = DiskAccess::ReadWrite;
    DiskKind m_kind = DiskKind::RegularFile;
    uint64_t m_size = 0;
    DiskGeometry m_geometry;
    bool m_punch_holes = false;
};

}  // namespace keel::block
