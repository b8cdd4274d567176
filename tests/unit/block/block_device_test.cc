// VirtioBlock end to end on fake rings against a temporary image, for both
// disk engines: what the driver gets back and what lands in the file.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "block_test_support.h"

using namespace keel;
using namespace keel::block;
using namespace keel::test;

namespace {

constexpr uint64_t kImageSize = 1 << 20;  // 2048 sectors

std::vector<uint8_t> slice(const std::vector<uint8_t>& v, uint64_t offset, uint64_t len) {
    return {v.begin() + static_cast<std::ptrdiff_t>(offset), v.begin() + static_cast<std::ptrdiff_t>(offset + len)};
}

DiskIoEngine any_engine() {
    return GENERATE(DiskIoEngine::Uring, DiskIoEngine::Sync);
}

}  // namespace

TEST_CASE("reads return the image's bytes, the status OK and data + 1 as used length", "[block][device]") {
    const DiskIoEngine engine = any_engine();
    INFO("engine " << to_string(engine));
    TempImage file(kImageSize);
    BlockRig rig(make_block(file, engine));
    REQUIRE(rig.device().engine() == engine);
    REQUIRE(rig.activate());

    const auto reply = rig.read(3, 4096);
    CHECK(reply.status == VIRTIO_BLK_S_OK);
    CHECK(reply.used_len == 4096 + 1);
    CHECK(reply.data == file.read(3 * kSector, 4096));
    CHECK(rig.counter("requests") == 1);
    CHECK(rig.counter("read_bytes") == 4096);
    CHECK(rig.counter("errors") == 0);
    CHECK(rig.counter("driver_notifications") == 1);
    CHECK(rig.counter("used_notifications") == 1);
    CHECK(rig.notifier.used_signals(0) == 1);
}

TEST_CASE("data scattered over several guest buffers is read and written in order", "[block][device]") {
    const DiskIoEngine engine = any_engine();
    TempImage file(kImageSize);
    BlockRig rig(make_block(file, engine));
    REQUIRE(rig.activate());

    const uint16_t head = rig.submit({blk_header(VIRTIO_BLK_T_IN, 10)}, {100, 412, 512, 1});
    const UsedEntry used = rig.wait_one();
    REQUIRE(used.id == head);
    REQUIRE(used.len == 1025);
    const auto bytes = rig.driver().written(head);
    CHECK(bytes.back() == VIRTIO_BLK_S_OK);
    CHECK(slice(bytes, 0, 1024) == file.read(10 * kSector, 1024));

    auto data = TempImage::pattern(1536, 99);
    const uint16_t wr = rig.submit(
        {concat(blk_header(VIRTIO_BLK_T_OUT, 20), slice(data, 0, 7)), slice(data, 7, 1000), slice(data, 1007, 529)},
        {1});
    const UsedEntry wused = rig.wait_one();
    REQUIRE(wused.id == wr);
    CHECK(wused.len == 1);
    CHECK(rig.status(wr) == VIRTIO_BLK_S_OK);
    CHECK(file.read(20 * kSector, 1536) == data);
}

TEST_CASE("writes reach the image and a flush completes after them", "[block][device]") {
    const DiskIoEngine engine = any_engine();
    TempImage file(kImageSize);
    const auto before = file.contents();
    BlockRig rig(make_block(file, engine));
    REQUIRE(rig.activate());

    const auto data = TempImage::pattern(8192, 42);
    const auto reply = rig.write(100, data);
    CHECK(reply.status == VIRTIO_BLK_S_OK);
    CHECK(reply.used_len == 1);
    const auto after = file.contents();
    CHECK(slice(after, 100 * kSector, 8192) == data);
    CHECK(slice(after, 0, 100 * kSector) == slice(before, 0, 100 * kSector));

    const auto flush = rig.request({blk_header(VIRTIO_BLK_T_FLUSH, 0)}, 0);
    CHECK(flush.status == VIRTIO_BLK_S_OK);
    CHECK(rig.counter("flushes") == 1);
    CHECK(rig.counter("written_bytes") == 8192);
}

TEST_CASE("get-id answers the serial, NUL-padded to 20 bytes", "[block][device]") {
    const DiskIoEngine engine = any_engine();
    TempImage file(kImageSize);
    SECTION("short serial") {
        BlockRig rig(make_block(file, engine, DiskAccess::ReadWrite, 1, "keel-disk-7"));
        REQUIRE(rig.activate());
        const auto reply = rig.request({blk_header(VIRTIO_BLK_T_GET_ID, 0)}, VIRTIO_BLK_ID_BYTES);
        CHECK(reply.status == VIRTIO_BLK_S_OK);
        CHECK(reply.used_len == VIRTIO_BLK_ID_BYTES + 1);
        std::vector<uint8_t> expected(VIRTIO_BLK_ID_BYTES, 0);
        const std::string serial = "keel-disk-7";
        std::copy(serial.begin(), serial.end(), expected.begin());
        CHECK(reply.data == expected);
    }
    SECTION("20-byte serial, no terminator; a larger buffer gets only 20 bytes") {
        const std::string serial = "ABCDEFGHIJKLMNOPQRST";
        BlockRig rig(make_block(file, engine, DiskAccess::ReadWrite, 1, serial));
        REQUIRE(rig.activate());
        const auto reply = rig.request({blk_header(VIRTIO_BLK_T_GET_ID, 0)}, 64);
        CHECK(reply.status == VIRTIO_BLK_S_OK);
        CHECK(reply.used_len == VIRTIO_BLK_ID_BYTES + 1);
        CHECK(std::string(reply.data.begin(), reply.data.begin() + VIRTIO_BLK_ID_BYTES) == serial);
    }
    SECTION("a buffer shorter than 20 bytes is an I/O error") {
        BlockRig rig(make_block(file, engine, DiskAccess::ReadWrite, 1, "x"));
        REQUIRE(rig.activate());
        const auto reply = rig.request({blk_header(VIRTIO_BLK_T_GET_ID, 0)}, 19);
        CHECK(reply.status == VIRTIO_BLK_S_IOERR);
        CHECK(reply.used_len == 1);
        CHECK(rig.counter("errors") == 1);
    }
}

TEST_CASE("discard punches a hole and write-zeroes leaves zeros, with or without unmap", "[block][device]") {
    const DiskIoEngine engine = any_engine();
    TempImage file(kImageSize);
    if (!punches_holes(file)) {
        SUCCEED("the file system under TMPDIR cannot punch holes: no discard to test");
        return;
    }
    BlockRig rig(make_block(file, engine));
    REQUIRE((rig.device().device_features() & (1ull << VIRTIO_BLK_F_DISCARD)) != 0);
    REQUIRE(rig.activate());

    const uint64_t allocated = file.allocated();
    const auto discard =
        rig.request({concat(blk_header(VIRTIO_BLK_T_DISCARD, 0), blk_segments({{256, 256}, {1024, 128}}))}, 0);
    CHECK(discard.status == VIRTIO_BLK_S_OK);
    CHECK(file.allocated() < allocated);
    CHECK(file.read(256 * kSector, 256 * kSector) == std::vector<uint8_t>(256 * kSector, 0));
    CHECK(file.read(1024 * kSector, 128 * kSector) == std::vector<uint8_t>(128 * kSector, 0));
    CHECK(rig.counter("discards") == 1);

    const auto zeroes =
        rig.request({concat(blk_header(VIRTIO_BLK_T_WRITE_ZEROES, 0),
                            blk_segments({{10, 3}, {40, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP}, {60, 0}}))},
                    0);
    CHECK(zeroes.status == VIRTIO_BLK_S_OK);
    CHECK(file.read(10 * kSector, 3 * kSector) == std::vector<uint8_t>(3 * kSector, 0));
    CHECK(file.read(40 * kSector, 8 * kSector) == std::vector<uint8_t>(8 * kSector, 0));
    CHECK(file.read(13 * kSector, kSector) == slice(TempImage::pattern(14 * kSector, 1), 13 * kSector, kSector));
    CHECK(rig.counter("write_zeroes") == 1);
    CHECK(file.size() == kImageSize);
}

TEST_CASE("out-of-range requests answer IOERR and leave the image alone", "[block][device]") {
    const DiskIoEngine engine = any_engine();
    TempImage file(kImageSize);
    const auto before = file.contents();
    BlockRig rig(make_block(file, engine));
    REQUIRE(rig.activate());
    const uint64_t capacity = kImageSize / kSector;

    CHECK(rig.read(capacity - 1, 1024).status == VIRTIO_BLK_S_IOERR);
    CHECK(rig.read(capacity, 512).status == VIRTIO_BLK_S_IOERR);
    CHECK(rig.write(capacity - 1, std::vector<uint8_t>(1024, 0xff)).status == VIRTIO_BLK_S_IOERR);
    CHECK(rig.write(UINT64_MAX, std::vector<uint8_t>(512, 0xff)).status == VIRTIO_BLK_S_IOERR);
    CHECK(rig.request({concat(blk_header(VIRTIO_BLK_T_DISCARD, 0), blk_segments({{capacity - 4, 8}}))}, 0).status ==
          VIRTIO_BLK_S_IOERR);
    const auto out_of_range = rig.read(capacity, 512);
    CHECK(out_of_range.used_len == 1);  // nothing but the status byte written
    CHECK(file.contents() == before);
    CHECK(rig.counter("errors") == 6);
    CHECK(rig.read(capacity - 1, 512).status == VIRTIO_BLK_S_OK);
}

TEST_CASE("a read-only disk offers RO, refuses every write with IOERR, and its file is unchanged", "[block][device]") {
    const DiskIoEngine engine = any_engine();
    TempImage file(kImageSize);
    const auto before = file.contents();
    BlockRig rig(make_block(file, engine, DiskAccess::ReadOnly));
    const uint64_t features = rig.device().device_features();
    CHECK((features & (1ull << VIRTIO_BLK_F_RO)) != 0);
    CHECK((features & (1ull << VIRTIO_BLK_F_DISCARD)) == 0);
    CHECK((features & (1ull << VIRTIO_BLK_F_WRITE_ZEROES)) == 0);
    REQUIRE(rig.activate());

    CHECK(rig.write(0, std::vector<uint8_t>(4096, 0)).status == VIRTIO_BLK_S_IOERR);
    CHECK(rig.request({concat(blk_header(VIRTIO_BLK_T_DISCARD, 0), blk_segments({{0, 8}}))}, 0).status ==
          VIRTIO_BLK_S_IOERR);
    CHECK(rig.request({concat(blk_header(VIRTIO_BLK_T_WRITE_ZEROES, 0), blk_segments({{0, 8}}))}, 0).status ==
          VIRTIO_BLK_S_IOERR);
    CHECK(rig.read(0, 4096).data == slice(before, 0, 4096));
    CHECK(rig.request({blk_header(VIRTIO_BLK_T_FLUSH, 0)}, 0).status == VIRTIO_BLK_S_OK);
    CHECK(file.contents() == before);
    CHECK(rig.counter("written_bytes") == 0);
}

TEST_CASE("malformed requests get IOERR or UNSUPP, and one without a status byte gets used length 0",
          "[block][device]") {
    const DiskIoEngine engine = any_engine();
    TempImage file(kImageSize);
    BlockRig rig(make_block(file, engine));
    REQUIRE(rig.activate());

    CHECK(rig.request({blk_header(VIRTIO_BLK_T_GET_ID + 100, 0)}, 0).status == VIRTIO_BLK_S_UNSUPP);
    CHECK(rig.request({std::vector<uint8_t>(8, 0)}, 0).status == VIRTIO_BLK_S_IOERR);
    CHECK(rig.read(0, 1000).status == VIRTIO_BLK_S_IOERR);
    CHECK(rig.request({concat(blk_header(VIRTIO_BLK_T_DISCARD, 0), blk_segments({{0, 1, 1}}))}, 0).status ==
          VIRTIO_BLK_S_UNSUPP);

    const uint16_t head = rig.submit({blk_header(VIRTIO_BLK_T_IN, 0), std::vector<uint8_t>(512)}, {});
    const UsedEntry used = rig.wait_one();
    CHECK(used.id == head);
    CHECK(used.len == 0);
    CHECK(rig.counter("errors") == 5);
    CHECK_FALSE(rig.notifier.needs_reset());
    CHECK(rig.read(0, 512).status == VIRTIO_BLK_S_OK);  // the device keeps working
}

TEST_CASE("more data buffers than seg_max is an I/O error", "[block][device]") {
    const DiskIoEngine engine = any_engine();
    TempImage file(kImageSize);
    BlockRig rig(make_block(file, engine), 256);
    REQUIRE(rig.activate());
    std::vector<uint32_t> writable(VirtioBlock::kSegMax + 1, 512);
    writable.push_back(1);
    const uint16_t head = rig.driver().add_indirect_chain({blk_header(VIRTIO_BLK_T_IN, 0)}, writable);
    rig.driver().publish();
    rig.kick();
    const UsedEntry used = rig.wait_one();
    CHECK(used.id == head);
    CHECK(rig.status(head) == VIRTIO_BLK_S_IOERR);

    std::vector<uint32_t> ok(VirtioBlock::kSegMax, 512);
    ok.push_back(1);
    const uint16_t good = rig.driver().add_indirect_chain({blk_header(VIRTIO_BLK_T_IN, 0)}, ok);
    rig.driver().publish();
    rig.kick();
    const UsedEntry used_ok = rig.wait_one();
    CHECK(used_ok.id == good);
    CHECK(used_ok.len == VirtioBlock::kSegMax * 512 + 1);
    CHECK(rig.status(good) == VIRTIO_BLK_S_OK);
}

TEST_CASE("a read past the end of a file that shrank under the device reads zeros", "[block][device]") {
    const DiskIoEngine engine = any_engine();
    TempImage file(kImageSize);
    BlockRig rig(make_block(file, engine));
    REQUIRE(rig.activate());
    file.truncate(kImageSize - 2048);
    const auto reply = rig.read(kImageSize / kSector - 8, 4096);
    CHECK(reply.status == VIRTIO_BLK_S_OK);
    CHECK(reply.used_len == 4097);
    CHECK(slice(reply.data, 0, 2048) == file.read(kImageSize - 4096, 2048));
    CHECK(slice(reply.data, 2048, 2048) == std::vector<uint8_t>(2048, 0));
}

TEST_CASE("interrupts follow the driver's suppression flags", "[block][device]") {
    const DiskIoEngine engine = any_engine();
    TempImage file(kImageSize);
    const uint64_t no_event_idx = kRingFeatures & ~(uint64_t{1} << VIRTIO_RING_F_EVENT_IDX);
    BlockRig rig(make_block(file, engine), 64, no_event_idx);
    REQUIRE(rig.activate());
    rig.driver().set_no_interrupt(true);
    CHECK(rig.read(0, 512).status == VIRTIO_BLK_S_OK);
    CHECK(rig.notifier.used_signals() == 0);
    CHECK(rig.counter("used_notifications") == 0);
    rig.driver().set_no_interrupt(false);
    CHECK(rig.read(0, 512).status == VIRTIO_BLK_S_OK);
    CHECK(rig.notifier.used_signals() == 1);
}
