// VirtioBlock around its requests: features, config space, activation and
// reset (with I/O in flight), completion ordering, broken drivers,
// multi-queue, batching and throttling.
#include <catch2/catch.hpp>
#include <cstddef>
#include <string>
#include <vector>

#include "block_test_support.h"

using namespace keel;
using namespace keel::block;
using namespace keel::test;

namespace {

constexpr uint64_t kImageSize = 1 << 20;

uint64_t bit(int feature) {
    return uint64_t{1} << feature;
}

template <typename T>
T config_field(const VirtioBlock& device, size_t offset) {
    T value{};
    device.read_config(offset, std::span(reinterpret_cast<uint8_t*>(&value), sizeof value));
    return value;
}

// A device whose disk engine the test completes by hand.
struct ManualRig {
    explicit ManualRig(const TempImage& file, uint32_t depth = 16) {
        DiskImage image = DiskImage::open(file.path(), DiskAccess::ReadWrite);
        auto manual = std::make_unique<ManualDiskIo>(image.fd(), depth);
        io = manual.get();
        BlockDeviceConfig config;
        config.name = "manual";
        rig = std::make_unique<BlockRig>(std::make_unique<VirtioBlock>(std::move(image), config, std::move(manual)));
    }
    ManualDiskIo* io = nullptr;
    std::unique_ptr<BlockRig> rig;
};

}  // namespace

TEST_CASE("features: ring features, FLUSH, limits, and MQ only with several queues", "[block][lifecycle]") {
    TempImage file(kImageSize);
    const auto one = make_block(file, DiskIoEngine::Sync);
    const uint64_t f = one->device_features();
    for (const int b :
         {VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC, VIRTIO_BLK_F_FLUSH,
          VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_WRITE_ZEROES}) {
        INFO("feature bit " << b);
        CHECK((f & bit(b)) != 0);
    }
    CHECK((f & bit(VIRTIO_BLK_F_MQ)) == 0);
    CHECK((f & bit(VIRTIO_BLK_F_RO)) == 0);
    CHECK((f & bit(VIRTIO_BLK_F_CONFIG_WCE)) == 0);
    CHECK(one->device_type() == VIRTIO_ID_BLOCK);
    CHECK(one->queue_max_sizes() == std::vector<uint16_t>{VirtioBlock::kQueueSize});
}

TEST_CASE("queue counts are clamped to 1..kMaxBlockQueues and MQ is offered for more than one", "[block][lifecycle]") {
    TempImage file(kImageSize);
    CHECK(make_block(file, DiskIoEngine::Sync, DiskAccess::ReadOnly, 0)->num_queues() == 1);
    const auto many = make_block(file, DiskIoEngine::Sync, DiskAccess::ReadOnly, 100);
    CHECK(many->num_queues() == kMaxBlockQueues);
    CHECK(many->queue_max_sizes().size() == kMaxBlockQueues);
    CHECK((many->device_features() & bit(VIRTIO_BLK_F_MQ)) != 0);
    CHECK(config_field<uint16_t>(*many, offsetof(virtio_blk_config, num_queues)) == kMaxBlockQueues);
}

TEST_CASE("the config space describes the disk and reads zeros past its end", "[block][lifecycle]") {
    TempImage file(kImageSize + 100);
    const auto device = make_block(file, DiskIoEngine::Sync);
    CHECK(config_field<uint64_t>(*device, offsetof(virtio_blk_config, capacity)) == kImageSize / 512);
    CHECK(config_field<uint32_t>(*device, offsetof(virtio_blk_config, seg_max)) == VirtioBlock::kSegMax);
    CHECK(config_field<uint32_t>(*device, offsetof(virtio_blk_config, size_max)) == VirtioBlock::kSizeMax);
    CHECK(config_field<uint32_t>(*device, offsetof(virtio_blk_config, blk_size)) == 512);
    CHECK(config_field<uint32_t>(*device, offsetof(virtio_blk_config, max_discard_seg)) == VirtioBlock::kMaxSegments);
    CHECK(config_field<uint32_t>(*device, offsetof(virtio_blk_config, max_discard_sectors)) ==
          VirtioBlock::kMaxDiscardSectors);
    CHECK(config_field<uint32_t>(*device, offsetof(virtio_blk_config, max_write_zeroes_sectors)) ==
          VirtioBlock::kMaxDiscardSectors);
    CHECK(config_field<uint8_t>(*device, offsetof(virtio_blk_config, write_zeroes_may_unmap)) ==
          (punches_holes(file) ? 1 : 0));
    if ((device->device_features() & bit(VIRTIO_BLK_F_TOPOLOGY)) != 0) {
        // A file on a 4 KiB-block file system: 8 logical blocks per physical one.
        CHECK(config_field<uint8_t>(*device, offsetof(virtio_blk_config, physical_block_exp)) >= 1);
    }
    // Unaligned and partial reads see the same bytes; past the end, zeros.
    const auto low = config_field<uint8_t>(*device, 1);
    CHECK(low == static_cast<uint8_t>((kImageSize / 512) >> 8));
    std::vector<uint8_t> tail(8, 0xff);
    device->read_config(sizeof(virtio_blk_config) - 2, tail);
    CHECK(tail == std::vector<uint8_t>(8, 0));
    device->read_config(1 << 20, tail);
    CHECK(tail == std::vector<uint8_t>(8, 0));
    // Nothing is writable.
    const std::vector<uint8_t> junk(8, 0xaa);
    device->write_config(0, junk);
    CHECK(config_field<uint64_t>(*device, 0) == kImageSize / 512);
}

TEST_CASE("a request completes only after the host I/O returned", "[block][lifecycle]") {
    TempImage file(kImageSize);
    ManualRig m(file);
    BlockRig& rig = *m.rig;
    REQUIRE(rig.activate());

    const auto data = TempImage::pattern(4096, 77);
    const uint16_t head = rig.submit({blk_header(VIRTIO_BLK_T_OUT, 8), data}, {1});
    rig.events.run_ready();
    CHECK(m.io->held() == 1);
    CHECK(rig.driver().used_idx() == 0);
    CHECK(rig.driver().written(head) == std::vector<uint8_t>{FakeDriverQueue::kPoison});
    CHECK(file.read(8 * 512, 4096) != data);
    CHECK(rig.notifier.used_signals() == 0);

    m.io->release();
    const auto used = rig.wait_used(1);
    REQUIRE(used.size() == 1);
    CHECK(used[0].id == head);
    CHECK(rig.status(head) == VIRTIO_BLK_S_OK);
    CHECK(file.read(8 * 512, 4096) == data);
    CHECK(rig.notifier.used_signals() == 1);
}

TEST_CASE("reset waits for I/O in flight and never completes it into the reset queue", "[block][lifecycle]") {
    TempImage file(kImageSize);
    ManualRig m(file);
    BlockRig& rig = *m.rig;
    REQUIRE(rig.activate());
    const size_t subscribed = rig.events.size();
    CHECK(subscribed == 2);  // kick fd + completion fd

    const uint16_t head = rig.submit({blk_header(VIRTIO_BLK_T_IN, 0)}, {4096, 1});
    rig.events.run_ready();
    REQUIRE(m.io->held() == 1);

    rig.device().reset();
    CHECK(m.io->wait_idle_calls() == 1);
    CHECK(m.io->in_flight() == 0);
    CHECK(rig.driver().used_idx() == 0);
    const auto bytes = rig.driver().written(head);
    CHECK(bytes.back() == FakeDriverQueue::kPoison);  // no status written
    CHECK(rig.events.size() == 0);
    CHECK(rig.events.run_ready() == 0);

    // A new activation serves the ring from the start again.
    REQUIRE(rig.activate());
    rig.kick();
    rig.events.run_ready();
    m.io->release();
    const auto used = rig.wait_used(1);
    REQUIRE(used.size() == 1);
    CHECK(used[0].id == head);
    CHECK(rig.status(head) == VIRTIO_BLK_S_OK);
}

TEST_CASE("reset with io_uring requests in flight leaves nothing running", "[block][lifecycle]") {
    TempImage file(8 << 20);
    BlockRig rig(make_block(file, DiskIoEngine::Uring), 256);
    REQUIRE(rig.activate());
    for (int i = 0; i < 48; ++i) {
        if (i % 2 == 0) {
            rig.driver().add_indirect_chain({blk_header(VIRTIO_BLK_T_IN, static_cast<uint64_t>(i) * 128)}, {65536, 1});
        } else {
            rig.driver().add_indirect_chain({blk_header(VIRTIO_BLK_T_FLUSH, 0)}, {1});
        }
    }
    rig.driver().publish();
    rig.kick();
    REQUIRE(rig.events.run(rig.kick_fd()));  // one wakeup: everything submitted
    rig.device().reset();
    const uint16_t used_at_reset = rig.driver().used_idx();
    CHECK(used_at_reset <= 48);
    CHECK(rig.events.run_ready() == 0);
    CHECK(rig.driver().used_idx() == used_at_reset);
}

TEST_CASE("a broken chain asks for a reset and stops the device until then", "[block][lifecycle]") {
    const DiskIoEngine engine = GENERATE(DiskIoEngine::Uring, DiskIoEngine::Sync);
    TempImage file(kImageSize);
    BlockRig rig(make_block(file, engine));
    REQUIRE(rig.activate());
    CHECK(rig.read(0, 512).status == VIRTIO_BLK_S_OK);

    // A head index beyond the ring (§2.7.13: the device must not use it).
    rig.driver().write_avail_entry(1, 999);
    rig.driver().set_avail_idx(2);
    rig.kick();
    rig.events.run_ready();
    CHECK(rig.notifier.needs_reset());
    CHECK(rig.notifier.needs_reset_calls() == 1);
    CHECK(rig.counter("errors") == 1);

    // Further kicks do nothing.
    rig.driver().submit({blk_header(VIRTIO_BLK_T_IN, 0)}, 513);
    rig.kick();
    rig.events.run_ready();
    CHECK(rig.driver().used_idx() == 1);
    CHECK(rig.notifier.needs_reset_calls() == 1);
}

TEST_CASE("every queue of a multi-queue disk is served and interrupts its own queue", "[block][lifecycle]") {
    const DiskIoEngine engine = GENERATE(DiskIoEngine::Uring, DiskIoEngine::Sync);
    TempImage file(kImageSize);
    BlockRig rig(make_block(file, engine, DiskAccess::ReadWrite, 4));
    REQUIRE(rig.activate());
    CHECK(rig.events.size() == (engine == DiskIoEngine::Uring ? 5u : 4u));
    for (uint16_t q = 0; q < 4; ++q) {
        INFO("queue " << q);
        const auto data = TempImage::pattern(1024, static_cast<uint8_t>(q));
        CHECK(rig.write(q * 100, data, q).status == VIRTIO_BLK_S_OK);
        CHECK(rig.read(q * 100, 1024, q).data == data);
        // EVENT_IDX: the fake driver leaves used_event at 0, so only the
        // first completion on each queue interrupts, and only that queue.
        CHECK(rig.notifier.used_signals(q) == 1);
        if (q + 1 < 4) CHECK(rig.notifier.used_signals(static_cast<uint16_t>(q + 1)) == 0);
    }
    CHECK(rig.counter("requests") == 8);
}

TEST_CASE("a driver that enables only the first queue is served on it", "[block][lifecycle]") {
    TempImage file(kImageSize);
    BlockRig rig(make_block(file, DiskIoEngine::Sync, DiskAccess::ReadWrite, 4));
    REQUIRE(rig.activate(1));
    CHECK(rig.events.size() == 1);
    CHECK(rig.read(0, 512).status == VIRTIO_BLK_S_OK);
}

TEST_CASE("activation refuses a queue count that does not match the device", "[block][lifecycle]") {
    TempImage file(kImageSize);
    auto device = make_block(file, DiskIoEngine::Sync);
    auto memory = GuestMemory::create({{Gpa{0}, 1 << 20}});
    std::vector<virtio::Queue> queues;
    queues.emplace_back(16);
    queues.emplace_back(16);
    const std::vector<int> fds{-1, -1};
    FakeEventRegistry events;
    FakeNotifier notifier;
    const virtio::ActivationContext context{memory, queues, fds, kRingFeatures, notifier, events};
    CHECK_FALSE(device->activate(context));
    CHECK(events.size() == 0);
}

TEST_CASE("a long burst is served in bounded batches across wakeups", "[block][lifecycle]") {
    const DiskIoEngine engine = GENERATE(DiskIoEngine::Uring, DiskIoEngine::Sync);
    TempImage file(kImageSize);
    BlockRig rig(make_block(file, engine), 256);
    REQUIRE(rig.activate());
    constexpr int kCount = 200;  // > 3 * kBatch
    for (int i = 0; i < kCount; ++i) {
        rig.driver().add_indirect_chain({blk_header(VIRTIO_BLK_T_IN, static_cast<uint64_t>(i))}, {512, 1});
    }
    rig.driver().publish();
    rig.kick();
    // The first wakeup serves one batch only.
    REQUIRE(rig.events.run(rig.kick_fd()));
    CHECK(rig.counter("requests") == VirtioBlock::kBatch);
    const auto used = rig.wait_used(kCount);
    CHECK(used.size() == kCount);
    CHECK(rig.counter("requests") == kCount);
    CHECK(rig.counter("driver_notifications") == 1);  // the device's own wakeups are not driver kicks
}

TEST_CASE("when every slot is in flight the queue waits and resumes on completions", "[block][lifecycle]") {
    TempImage file(kImageSize);
    ManualRig m(file, 4);
    BlockRig& rig = *m.rig;
    REQUIRE(rig.activate());
    for (int i = 0; i < 10; ++i)
        rig.driver().add_chain({blk_header(VIRTIO_BLK_T_IN, static_cast<uint64_t>(i))}, {512, 1});
    rig.driver().publish();
    rig.kick();
    rig.events.run_ready();
    CHECK(m.io->held() == 4);
    std::vector<UsedEntry> used;
    for (int round = 0; round < 10 && used.size() < 10; ++round) {
        m.io->release();
        rig.events.run_ready();
        for (const auto& e : rig.driver().used_entries()) used.push_back(e);
    }
    CHECK(used.size() == 10);
    CHECK(rig.counter("in_flight_max") == 4);
}

TEST_CASE("destroying a device releases its image lock at once", "[block][lifecycle]") {
    const DiskIoEngine engine = GENERATE(DiskIoEngine::Uring, DiskIoEngine::Sync);
    TempImage file(kImageSize);
    for (int i = 0; i < 3; ++i) {
        BlockRig rig(make_block(file, engine));
        REQUIRE(rig.activate());
        CHECK(rig.read(0, 4096).status == VIRTIO_BLK_S_OK);
    }
    CHECK_NOTHROW(DiskImage::open(file.path(), DiskAccess::ReadWrite));
}
