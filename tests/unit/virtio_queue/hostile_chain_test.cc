// A hostile driver: every malformed ring shape breaks the queue with the
// matching error, without touching memory outside guest RAM or hanging.

#include <catch2/catch.hpp>

#include "queue_test_support.h"

using namespace keel;
using namespace keel::test;
using virtio::PopStatus;
using virtio::QueueError;

namespace {

constexpr uint16_t kNext = VRING_DESC_F_NEXT;
constexpr uint16_t kWrite = VRING_DESC_F_WRITE;
constexpr uint16_t kIndirect = VRING_DESC_F_INDIRECT;

// Publishes descriptor `head` as the next chain.
void publish_head(FakeDriverQueue& driver, uint16_t head) {
    driver.push_avail(head);
    driver.publish();
}

}  // namespace

TEST_CASE("a descriptor that chains to itself is a loop", "[virtio_queue][hostile]") {
    QueueRig rig;
    rig.driver.write_descriptor(3, 0x1000, 8, kNext, 3);
    publish_head(rig.driver, 3);
    rig.require_broken(QueueError::ChainLoop);
}

TEST_CASE("two descriptors chaining to each other are a loop", "[virtio_queue][hostile]") {
    QueueRig rig;
    rig.driver.write_descriptor(0, 0x1000, 8, kNext, 1);
    rig.driver.write_descriptor(1, 0x1000, 8, kNext, 0);
    publish_head(rig.driver, 0);
    rig.require_broken(QueueError::ChainLoop);
}

TEST_CASE("a loop through every descriptor of a large queue is found", "[virtio_queue][hostile]") {
    QueueRig rig(256);
    for (uint16_t i = 0; i < 256; ++i) {
        rig.driver.write_descriptor(i, 0x1000, 8, kNext, static_cast<uint16_t>((i + 1) % 256));
    }
    publish_head(rig.driver, 17);
    rig.require_broken(QueueError::ChainLoop);
}

TEST_CASE("a head index at or above the queue size is refused", "[virtio_queue][hostile]") {
    QueueRig rig;
    const uint16_t head = GENERATE(uint16_t{16}, uint16_t{255}, uint16_t{0xffff});
    publish_head(rig.driver, head);
    rig.require_broken(QueueError::HeadIndexOutOfRange);
}

TEST_CASE("a next index at or above the queue size is refused", "[virtio_queue][hostile]") {
    QueueRig rig;
    rig.driver.write_descriptor(0, 0x1000, 8, kNext, 16);
    publish_head(rig.driver, 0);
    rig.require_broken(QueueError::NextIndexOutOfRange);
}

TEST_CASE("buffers outside guest RAM are refused", "[virtio_queue][hostile]") {
    uint64_t addr = 0;
    uint32_t len = 0;
    SECTION("straddling the end of a region") {
        addr = kRam0End - 4;
        len = 8;
    }
    SECTION("in the hole between regions") {
        addr = kRam0End + 0x1000;
        len = 1;
    }
    SECTION("across the hole, covering both regions") {
        addr = kRam0End - 1;
        len = 0x100002;
    }
    SECTION("past the end of RAM") {
        addr = kRam1End;
        len = 1;
    }
    SECTION("wrapping the address space") {
        addr = UINT64_MAX - 3;
        len = 8;
    }
    SECTION("a 4 GiB - 1 length") {
        addr = 0x1000;
        len = UINT32_MAX;
    }
    for (const uint16_t flags : {uint16_t{0}, kWrite}) {
        QueueRig rig;
        rig.driver.write_descriptor(0, addr, len, flags, 0);
        publish_head(rig.driver, 0);
        rig.require_broken(QueueError::BufferOutOfGuestMemory);
    }
}

TEST_CASE("a buffer across two adjacent regions is refused", "[virtio_queue][hostile]") {
    // Contiguous guest addresses, but two host mappings.
    auto memory = GuestMemory::create({{Gpa{0}, 0x40000}, {Gpa{0x40000}, 0x40000}});
    FakeDriverQueue driver(memory, 8);
    virtio::Queue queue(8);
    driver.configure(queue);
    REQUIRE(queue.activate(memory, 0) == QueueError::None);
    driver.write_descriptor(0, 0x40000 - 8, 16, 0, 0);
    publish_head(driver, 0);
    virtio::DescriptorChain chain;
    REQUIRE(queue.pop(chain) == PopStatus::Broken);
    CHECK(queue.last_error() == QueueError::BufferOutOfGuestMemory);
}

TEST_CASE("a readable part above 2^32 - 1 bytes is refused", "[virtio_queue][hostile]") {
    // 1024 descriptors of 8 MiB each all point at the same RAM: 8 GiB in total.
    auto memory = GuestMemory::create({{Gpa{0}, 16 << 20}});
    FakeDriverQueue driver(memory, 1024);
    virtio::Queue queue(1024);
    driver.configure(queue);
    REQUIRE(queue.activate(memory, 0) == QueueError::None);
    const uint16_t flags = GENERATE(uint16_t{0}, kWrite);
    for (uint16_t i = 0; i < 1024; ++i) {
        driver.write_descriptor(i, 0x800000, 0x800000, static_cast<uint16_t>(flags | (i == 1023 ? 0 : kNext)),
                                static_cast<uint16_t>(i + 1));
    }
    publish_head(driver, 0);
    virtio::DescriptorChain chain;
    REQUIRE(queue.pop(chain) == PopStatus::Broken);
    CHECK(queue.last_error() == QueueError::ChainTooLong);
}

TEST_CASE("a readable and a writable part of 2^32 - 1 bytes each are accepted", "[virtio_queue][hostile]") {
    auto memory = GuestMemory::create({{Gpa{0}, 0x100000}, {Gpa{0x1'0000'0000}, 0x1'0000'0000}});
    FakeDriverQueue driver(memory, 8);
    virtio::Queue queue(8);
    driver.configure(queue);
    REQUIRE(queue.activate(memory, 0) == QueueError::None);
    driver.write_descriptor(0, 0x1'0000'0000, UINT32_MAX, kNext, 1);
    driver.write_descriptor(1, 0x1'0000'0000, UINT32_MAX, kWrite, 0);
    publish_head(driver, 0);
    virtio::DescriptorChain chain;
    REQUIRE(queue.pop(chain) == PopStatus::Chain);
    CHECK(chain.readable_bytes() == UINT32_MAX);
    CHECK(chain.writable_bytes() == UINT32_MAX);
}

TEST_CASE("a readable descriptor after a writable one is refused", "[virtio_queue][hostile]") {
    QueueRig rig;
    rig.driver.write_descriptor(0, 0x1000, 8, kWrite | kNext, 1);
    rig.driver.write_descriptor(1, 0x2000, 8, 0, 0);
    publish_head(rig.driver, 0);
    rig.require_broken(QueueError::ReadableAfterWritable);
}

TEST_CASE("a zero-length readable descriptor after a writable one is still out of order", "[virtio_queue][hostile]") {
    QueueRig rig;
    rig.driver.write_descriptor(0, 0x1000, 8, kWrite | kNext, 1);
    rig.driver.write_descriptor(1, 0, 0, 0, 0);
    publish_head(rig.driver, 0);
    rig.require_broken(QueueError::ReadableAfterWritable);
}

TEST_CASE("descriptors with unknown flags are refused", "[virtio_queue][hostile]") {
    QueueRig rig(16, kIndirectDesc);
    const uint16_t flags = GENERATE(uint16_t{8}, uint16_t{0x10}, uint16_t{0x8000}, uint16_t{0xffff});
    rig.driver.write_descriptor(0, 0x1000, 8, flags, 0);
    publish_head(rig.driver, 0);
    rig.require_broken(QueueError::UnknownDescriptorFlags);
}

TEST_CASE("an indirect descriptor without the negotiated feature is refused", "[virtio_queue][hostile]") {
    QueueRig rig(16, 0);
    rig.driver.add_indirect_chain({{1}}, {});
    rig.driver.publish();
    rig.require_broken(QueueError::IndirectNotNegotiated);
}

TEST_CASE("an indirect descriptor inside an indirect table is refused", "[virtio_queue][hostile]") {
    QueueRig rig(16, kIndirectDesc);
    const Gpa inner = rig.driver.alloc(16);
    rig.driver.write_indirect_descriptor(inner, 0, 0x1000, 8, 0, 0);
    const Gpa outer = rig.driver.alloc(16);
    rig.driver.write_indirect_descriptor(outer, 0, inner.value, 16, kIndirect, 0);
    rig.driver.write_descriptor(0, outer.value, 16, kIndirect, 0);
    publish_head(rig.driver, 0);
    rig.require_broken(QueueError::NestedIndirect);
}

TEST_CASE("an indirect descriptor with NEXT is refused", "[virtio_queue][hostile]") {
    QueueRig rig(16, kIndirectDesc);
    const Gpa table = rig.driver.alloc(16);
    rig.driver.write_indirect_descriptor(table, 0, 0x1000, 8, 0, 0);
    rig.driver.write_descriptor(0, table.value, 16, kIndirect | kNext, 1);
    rig.driver.write_descriptor(1, 0x1000, 8, 0, 0);
    publish_head(rig.driver, 0);
    rig.require_broken(QueueError::IndirectWithNext);
}

TEST_CASE("an indirect table of a bad length is refused", "[virtio_queue][hostile]") {
    QueueRig rig(16, kIndirectDesc);
    const Gpa table = rig.driver.alloc(16 * 1025);
    for (uint16_t i = 0; i < 1025; ++i) rig.driver.write_indirect_descriptor(table, i, 0x1000, 1, 0, 0);
    const uint32_t len = GENERATE(0u, 8u, 15u, 17u, 16u * 1025u, UINT32_MAX & ~15u);
    rig.driver.write_descriptor(0, table.value, len, kIndirect, 0);
    publish_head(rig.driver, 0);
    rig.require_broken(QueueError::IndirectBadLength);
}

TEST_CASE("an indirect table outside guest RAM is refused", "[virtio_queue][hostile]") {
    QueueRig rig(16, kIndirectDesc);
    const uint64_t addr = GENERATE(kRam0End - 16, kRam0End + 0x100, UINT64_MAX - 15);
    rig.driver.write_descriptor(0, addr, 32, kIndirect, 0);
    publish_head(rig.driver, 0);
    rig.require_broken(QueueError::BufferOutOfGuestMemory);
}

TEST_CASE("a next index beyond an indirect table is refused", "[virtio_queue][hostile]") {
    QueueRig rig(16, kIndirectDesc);
    const Gpa table = rig.driver.alloc(32);
    rig.driver.write_indirect_descriptor(table, 0, 0x1000, 8, kNext, 1);
    rig.driver.write_indirect_descriptor(table, 1, 0x1000, 8, kNext, 2);  // the table has 2 entries
    rig.driver.write_descriptor(0, table.value, 32, kIndirect, 0);
    publish_head(rig.driver, 0);
    rig.require_broken(QueueError::NextIndexOutOfRange);
}

TEST_CASE("a loop inside an indirect table is found", "[virtio_queue][hostile]") {
    QueueRig rig(16, kIndirectDesc);
    const Gpa table = rig.driver.alloc(48);
    rig.driver.write_indirect_descriptor(table, 0, 0x1000, 8, kNext, 1);
    rig.driver.write_indirect_descriptor(table, 1, 0x1000, 8, kNext, 2);
    rig.driver.write_indirect_descriptor(table, 2, 0x1000, 8, kNext, 1);
    rig.driver.write_descriptor(0, table.value, 48, kIndirect, 0);
    publish_head(rig.driver, 0);
    rig.require_broken(QueueError::ChainLoop);
}

TEST_CASE("writable-then-readable inside an indirect table is refused", "[virtio_queue][hostile]") {
    QueueRig rig(16, kIndirectDesc);
    const Gpa table = rig.driver.alloc(32);
    rig.driver.write_indirect_descriptor(table, 0, 0x1000, 8, kWrite | kNext, 1);
    rig.driver.write_indirect_descriptor(table, 1, 0x1000, 8, 0, 0);
    rig.driver.write_descriptor(0, table.value, 32, kIndirect, 0);
    publish_head(rig.driver, 0);
    rig.require_broken(QueueError::ReadableAfterWritable);
}

TEST_CASE("a buffer in an indirect table outside guest RAM is refused", "[virtio_queue][hostile]") {
    QueueRig rig(16, kIndirectDesc);
    const Gpa table = rig.driver.alloc(16);
    rig.driver.write_indirect_descriptor(table, 0, kRam0End + 0x10, 8, kWrite, 0);
    rig.driver.write_descriptor(0, table.value, 16, kIndirect, 0);
    publish_head(rig.driver, 0);
    rig.require_broken(QueueError::BufferOutOfGuestMemory);
}

TEST_CASE("avail.idx more than the queue size ahead is refused", "[virtio_queue][hostile]") {
    QueueRig rig;
    const uint16_t idx = GENERATE(uint16_t{17}, uint16_t{0x8000}, uint16_t{0xffff});
    rig.driver.set_avail_idx(idx);
    rig.require_broken(QueueError::AvailIndexJump);
}

TEST_CASE("avail.idx moving backwards is refused", "[virtio_queue][hostile]") {
    QueueRig rig;
    rig.driver.submit({1}, 0);
    rig.driver.submit({2}, 0);
    REQUIRE(rig.pop() == PopStatus::Chain);
    REQUIRE(rig.pop() == PopStatus::Chain);
    rig.driver.set_avail_idx(1);  // behind the device: 0xffff chains "ahead"
    rig.require_broken(QueueError::AvailIndexJump);
}

TEST_CASE("a broken queue stays broken and keeps its first error", "[virtio_queue][hostile]") {
    QueueRig rig;
    publish_head(rig.driver, 99);
    rig.require_broken(QueueError::HeadIndexOutOfRange);
    rig.driver.set_avail_idx(0x4000);
    rig.require_broken(QueueError::HeadIndexOutOfRange);
    CHECK_FALSE(rig.queue.add_used(0, 0));
    CHECK_FALSE(rig.queue.needs_notification());
    CHECK_FALSE(rig.queue.enable_notification());
    CHECK(rig.driver.used_idx() == 0);
}

TEST_CASE("a chain that was valid when popped stays what the device saw", "[virtio_queue][hostile]") {
    // The guest rewrites the descriptor after pop(): the chain keeps the copy
    // that was validated.
    QueueRig rig;
    const uint16_t head = rig.driver.submit({1, 2, 3, 4}, 0);
    REQUIRE(rig.pop() == PopStatus::Chain);
    rig.driver.write_descriptor(head, UINT64_MAX - 1, UINT32_MAX, kWrite, 0);
    CHECK(rig.chain.readable_bytes() == 4);
    CHECK(bytes_of(rig.chain.reader()) == std::vector<uint8_t>{1, 2, 3, 4});
}
