#include "virtio/block/disk_image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "block_test_support.h"
#include "common/error.h"

using namespace keel;
using namespace keel::block;
using keel::test::TempImage;

namespace {

std::string error_of(const std::string& path, DiskAccess access) {
    try {
        (void)DiskImage::open(path, access);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

int open_flags(int fd) {
    return ::fcntl(fd, F_GETFL);
}

}  // namespace

TEST_CASE("an image's capacity is its size in whole 512-byte sectors", "[block][image]") {
    TempImage file(64 * 1024);
    const DiskImage image = DiskImage::open(file.path(), DiskAccess::ReadWrite);
    CHECK(image.kind() == DiskKind::RegularFile);
    CHECK(image.size_bytes() == 64 * 1024);
    CHECK(image.capacity_sectors() == 128);
    CHECK(image.geometry().logical_block_size == 512);
    CHECK(image.geometry().physical_block_size >= 512);
}

TEST_CASE("a partial sector at the end of an image is not visible", "[block][image]") {
    TempImage file(10 * 512 + 100);
    const DiskImage image = DiskImage::open(file.path(), DiskAccess::ReadOnly);
    CHECK(image.capacity_sectors() == 10);
}

TEST_CASE("read-only images are opened O_RDONLY, writable ones O_RDWR, both close-on-exec", "[block][image]") {
    TempImage file(4096);
    const DiskImage ro = DiskImage::open(file.path(), DiskAccess::ReadOnly);
    CHECK((open_flags(ro.fd()) & O_ACCMODE) == O_RDONLY);
    CHECK((::fcntl(ro.fd(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK(ro.read_only());
    CHECK_FALSE(ro.can_punch_holes());

    TempImage other(4096);
    const DiskImage rw = DiskImage::open(other.path(), DiskAccess::ReadWrite);
    CHECK((open_flags(rw.fd()) & O_ACCMODE) == O_RDWR);
    CHECK((::fcntl(rw.fd(), F_GETFD) & FD_CLOEXEC) != 0);
}

TEST_CASE("OFD locks stop a second writer or a writer next to a reader, even in one process", "[block][image]") {
    // Open-file-description locks belong to the open(), so two DiskImage
    // opens of one file conflict although they share a process.
    TempImage file(4096);
    const std::string in_use = "disk image '" + file.path() + "' is in use by another process (locked)";
    {
        const DiskImage writer = DiskImage::open(file.path(), DiskAccess::ReadWrite);
        CHECK(error_of(file.path(), DiskAccess::ReadWrite) == in_use);
        CHECK(error_of(file.path(), DiskAccess::ReadOnly) == in_use);
    }
    {
        const DiskImage reader = DiskImage::open(file.path(), DiskAccess::ReadOnly);
        const DiskImage second_reader = DiskImage::open(file.path(), DiskAccess::ReadOnly);
        CHECK(error_of(file.path(), DiskAccess::ReadWrite) == in_use);
    }
    // Closing releases the lock.
    const DiskImage again = DiskImage::open(file.path(), DiskAccess::ReadWrite);
    CHECK(again.capacity_sectors() == 8);
}

TEST_CASE("the lock holds against another process", "[block][image]") {
    TempImage file(4096);
    const DiskImage writer = DiskImage::open(file.path(), DiskAccess::ReadWrite);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // The child inherits the fd (and so the same lock), so it opens the
        // file afresh, as another keel would.
        const int fd = ::open(file.path().c_str(), O_RDWR);
        struct flock lk {};
        lk.l_type = F_WRLCK;
        lk.l_whence = SEEK_SET;
        const int r = ::fcntl(fd, F_OFD_SETLK, &lk);
        ::_exit(r == -1 && (errno == EAGAIN || errno == EACCES) ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("images that cannot be used are errors naming the file", "[block][image]") {
    CHECK(error_of("/nonexistent/keel.img", DiskAccess::ReadOnly)
              .find("cannot open disk image '/nonexistent/keel.img'") != std::string::npos);
    CHECK(error_of("/dev/null", DiskAccess::ReadOnly) ==
          "disk image '/dev/null' is neither a regular file nor a block device");
    CHECK(error_of("/", DiskAccess::ReadOnly).find("disk image '/'") != std::string::npos);
    TempImage tiny(100);
    CHECK(error_of(tiny.path(), DiskAccess::ReadOnly).find("smaller than one 512-byte sector") != std::string::npos);
}

TEST_CASE("a read-only file can be used read-only but not writable", "[block][image]") {
    if (::geteuid() == 0) SUCCEED("root ignores file modes; the writable case cannot be tested here");
    TempImage file(4096);
    REQUIRE(::chmod(file.path().c_str(), 0444) == 0);
    CHECK_NOTHROW(DiskImage::open(file.path(), DiskAccess::ReadOnly));
    if (::geteuid() != 0) {
        CHECK(error_of(file.path(), DiskAccess::ReadWrite).find("readonly=on") != std::string::npos);
    }
}

TEST_CASE("punch-hole support is probed without changing the image", "[block][image]") {
    TempImage file(8192 + 100);
    const auto before = file.contents();
    const DiskImage image = DiskImage::open(file.path(), DiskAccess::ReadWrite);
    CHECK(image.can_punch_holes() == keel::test::punches_holes(file));
    CHECK(file.contents() == before);
    CHECK(file.size() == 8192 + 100);
}
