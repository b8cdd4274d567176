// VirtioBlock::change_backing_file (PATCH /drives/{id}): a new file, or the
// same file resized in place, with I/O in flight, and a path that fails.
#include <linux/virtio_blk.h>

#include <catch2/catch.hpp>
#include <cstddef>

#include "block_test_support.h"
#include "common/error.h"

using namespace keel;
using namespace keel::block;
using namespace keel::test;

namespace {

uint64_t capacity(const VirtioBlock& device) {
    uint64_t value = 0;
    device.read_config(offsetof(virtio_blk_config, capacity),
                       std::span(reinterpret_cast<uint8_t*>(&value), sizeof value));
    return value;
}

}  // namespace

TEST_CASE("a new backing file: the capacity changes, the driver is told, reads come from the new file",
          "[block][backing]") {
    TempImage first(1 << 20);
    TempImage second(2 << 20);
    // Different contents in the second file.
    const auto marked = TempImage::pattern(4096, 99);
    {
        UniqueFd fd(::open(second.path().c_str(), O_WRONLY | O_CLOEXEC));
        REQUIRE(::pwrite(fd.get(), marked.data(), marked.size(), 0) == 4096);
    }
    BlockRig rig(make_block(first, DiskIoEngine::Sync));
    REQUIRE(rig.activate());
    CHECK(capacity(rig.device()) == 2048);
    CHECK(rig.read(0, 4096).data == first.read(0, 4096));

    rig.device().change_backing_file(second.path());
    CHECK(capacity(rig.device()) == 4096);
    CHECK(rig.notifier.config_signals() == 1);
    CHECK(rig.device().image().path() == second.path());
    const auto reply = rig.read(0, 4096);
    CHECK(reply.status == VIRTIO_BLK_S_OK);
    CHECK(reply.data == marked);
    // Past the old end, inside the new one.
    CHECK(rig.read(3000, 512).status == VIRTIO_BLK_S_OK);
}

TEST_CASE("the same file resized in place is read again, not opened twice", "[block][backing]") {
    TempImage file(1 << 20);
    BlockRig rig(make_block(file, DiskIoEngine::Sync));
    REQUIRE(rig.activate());
    file.truncate(3 << 20);
    // Opening it again would collide with the device's own write lock.
    rig.device().change_backing_file(file.path());
    CHECK(capacity(rig.device()) == 6144);
    CHECK(rig.notifier.config_signals() == 1);
    CHECK(rig.read(6000, 512).status == VIRTIO_BLK_S_OK);
    CHECK(rig.read(6144, 512).status == VIRTIO_BLK_S_IOERR);
}

TEST_CASE("a backing file that cannot be opened leaves the disk as it was", "[block][backing]") {
    TempImage file(1 << 20);
    BlockRig rig(make_block(file, DiskIoEngine::Sync));
    REQUIRE(rig.activate());
    CHECK_THROWS_AS(rig.device().change_backing_file("/nonexistent/disk.img"), Error);
    CHECK(capacity(rig.device()) == 2048);
    CHECK(rig.notifier.config_signals() == 0);
    CHECK(rig.read(0, 512).data == file.read(0, 512));
}

TEST_CASE("I/O in flight on the old file completes before the switch, and its answer reaches the driver",
          "[block][backing]") {
    TempImage first(1 << 20);
    TempImage second(1 << 20);
    DiskImage image = DiskImage::open(first.path(), DiskAccess::ReadWrite);
    auto manual = std::make_unique<ManualDiskIo>(image.fd(), 16);
    ManualDiskIo* io = manual.get();
    BlockDeviceConfig config;
    config.name = "manual";
    BlockRig rig(std::make_unique<VirtioBlock>(std::move(image), config, std::move(manual)));
    REQUIRE(rig.activate());

    const auto data = TempImage::pattern(4096, 55);
    const uint16_t head = rig.submit({blk_header(VIRTIO_BLK_T_OUT, 16), data}, {1});
    rig.events.run_ready();
    REQUIRE(io->held() == 1);

    rig.device().change_backing_file(second.path());
    CHECK(io->wait_idle_calls() == 1);
    CHECK(io->fd_changes() == 1);
    // The write went to the old file, and the driver got its answer.
    CHECK(first.read(16 * 512, 4096) == data);
    CHECK(second.read(16 * 512, 4096) != data);
    const auto used = rig.driver().used_entries();
    REQUIRE(used.size() == 1);
    CHECK(used[0].id == head);
    CHECK(rig.status(head) == VIRTIO_BLK_S_OK);
    CHECK(rig.notifier.used_signals() == 1);
    CHECK(rig.notifier.config_signals() == 1);
}

TEST_CASE("a read-only disk stays read-only on its new file", "[block][backing]") {
    TempImage first(1 << 20);
    TempImage second(1 << 20);
    BlockRig rig(make_block(first, DiskIoEngine::Sync, DiskAccess::ReadOnly));
    REQUIRE(rig.activate());
    rig.device().change_backing_file(second.path());
    CHECK(rig.device().image().read_only());
    CHECK(rig.write(0, TempImage::pattern(512, 3)).status == VIRTIO_BLK_S_IOERR);
}
