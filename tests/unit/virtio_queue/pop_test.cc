#include <catch2/catch.hpp>

#include "queue_test_support.h"

using namespace keel;
using namespace keel::test;
using virtio::PopStatus;
using virtio::QueueError;

TEST_CASE("a popped chain exposes its readable and writable parts", "[virtio_queue]") {
    QueueRig rig;
    const uint16_t head = rig.driver.submit({{1, 2, 3}, {4, 5}}, {8, 4});
    REQUIRE(rig.pop() == PopStatus::Chain);
    CHECK(rig.chain.head_index() == head);
    CHECK(rig.chain.buffer_count() == 4);
    CHECK(rig.chain.readable_bytes() == 5);
    CHECK(rig.chain.writable_bytes() == 12);
    CHECK(bytes_of(rig.chain.reader()) == std::vector<uint8_t>{1, 2, 3, 4, 5});
    CHECK(rig.chain.writer().remaining() == 12);
    CHECK(rig.pop() == PopStatus::Empty);
}

TEST_CASE("add_used publishes the head and length in the used ring", "[virtio_queue]") {
    QueueRig rig;
    const uint16_t head = rig.driver.submit({9}, 16);
    REQUIRE(rig.pop() == PopStatus::Chain);
    auto writer = rig.chain.writer();
    REQUIRE(writer.write_obj<uint32_t>(0xdeadbeef));
    REQUIRE(rig.queue.add_used(rig.chain.head_index(), static_cast<uint32_t>(writer.bytes_written())));
    CHECK(rig.driver.used_idx() == 1);
    const auto used = rig.driver.used_entries();
    REQUIRE(used.size() == 1);
    CHECK(used[0] == UsedEntry{head, 4});
    const auto reply = rig.driver.written(head);
    CHECK(reply == std::vector<uint8_t>{0xef, 0xbe, 0xad, 0xde, FakeDriverQueue::kPoison, FakeDriverQueue::kPoison,
                                        FakeDriverQueue::kPoison, FakeDriverQueue::kPoison, FakeDriverQueue::kPoison,
                                        FakeDriverQueue::kPoison, FakeDriverQueue::kPoison, FakeDriverQueue::kPoison,
                                        FakeDriverQueue::kPoison, FakeDriverQueue::kPoison, FakeDriverQueue::kPoison,
                                        FakeDriverQueue::kPoison});
}

TEST_CASE("chains are popped in avail order and only once published", "[virtio_queue]") {
    QueueRig rig;
    const uint16_t a = rig.driver.add_chain({{1}}, {});
    const uint16_t b = rig.driver.add_chain({{2}}, {});
    CHECK(rig.pop() == PopStatus::Empty);  // added, not yet published
    rig.driver.publish();
    REQUIRE(rig.pop() == PopStatus::Chain);
    CHECK(rig.chain.head_index() == a);
    REQUIRE(rig.pop() == PopStatus::Chain);
    CHECK(rig.chain.head_index() == b);
    CHECK(rig.pop() == PopStatus::Empty);
}

TEST_CASE("a full ring of size chains is accepted", "[virtio_queue]") {
    QueueRig rig(8);
    for (int i = 0; i < 8; ++i) rig.driver.add_chain({{static_cast<uint8_t>(i)}}, {});
    rig.driver.publish();
    for (int i = 0; i < 8; ++i) {
        REQUIRE(rig.pop() == PopStatus::Chain);
        CHECK(bytes_of(rig.chain.reader()) == std::vector<uint8_t>{static_cast<uint8_t>(i)});
    }
    CHECK(rig.pop() == PopStatus::Empty);
}

TEST_CASE("a direct chain as long as the queue is accepted", "[virtio_queue]") {
    QueueRig rig(8);
    rig.driver.submit({{1}, {2}, {3}, {4}}, {1, 1, 1, 1});
    REQUIRE(rig.pop() == PopStatus::Chain);
    CHECK(rig.chain.buffer_count() == 8);
}

TEST_CASE("an indirect chain is read from its table", "[virtio_queue]") {
    QueueRig rig(16, kIndirectDesc);
    const uint16_t head = rig.driver.add_indirect_chain({{1, 2}, {3}}, {4, 4});
    rig.driver.publish();
    REQUIRE(rig.pop() == PopStatus::Chain);
    CHECK(rig.chain.head_index() == head);
    CHECK(rig.chain.buffer_count() == 4);
    CHECK(bytes_of(rig.chain.reader()) == std::vector<uint8_t>{1, 2, 3});
    CHECK(rig.chain.writable_bytes() == 8);
    CHECK(rig.driver.free_descriptors() == 15);  // one ring descriptor for the whole chain
}

TEST_CASE("direct descriptors may be followed by one indirect descriptor", "[virtio_queue]") {
    // §2.7.5.3.2: "zero or more normal chained descriptors followed by a
    // single descriptor with flags&VIRTQ_DESC_F_INDIRECT".
    QueueRig rig(16, kIndirectDesc);
    const Gpa data = rig.driver.alloc(4);
    rig.driver.write_bytes(data, std::vector<uint8_t>{7, 7, 7, 7});
    const Gpa table = rig.driver.alloc(32);
    rig.driver.write_indirect_descriptor(table, 0, data.value, 2, VRING_DESC_F_NEXT, 1);
    rig.driver.write_indirect_descriptor(table, 1, data.value + 2, 2, VRING_DESC_F_WRITE, 0);
    rig.driver.write_descriptor(3, data.value, 1, VRING_DESC_F_NEXT, 5);
    // WRITE on the descriptor that points at a table is ignored (§2.7.5.3.2).
    rig.driver.write_descriptor(5, table.value, 32, VRING_DESC_F_INDIRECT | VRING_DESC_F_WRITE, 0);
    rig.driver.push_avail(3);
    rig.driver.publish();
    REQUIRE(rig.pop() == PopStatus::Chain);
    CHECK(rig.chain.readable_bytes() == 3);
    CHECK(rig.chain.writable_bytes() == 2);
}

TEST_CASE("an indirect table of 1024 entries is accepted", "[virtio_queue]") {
    QueueRig rig(16, kIndirectDesc);
    const Gpa data = rig.driver.alloc(1);
    const Gpa table = rig.driver.alloc(16 * 1024);
    for (uint16_t i = 0; i < 1024; ++i) {
        rig.driver.write_indirect_descriptor(table, i, data.value, 1, i == 1023 ? 0 : VRING_DESC_F_NEXT,
                                             static_cast<uint16_t>(i + 1));
    }
    rig.driver.write_descriptor(0, table.value, 16 * 1024, VRING_DESC_F_INDIRECT, 0);
    rig.driver.push_avail(0);
    rig.driver.publish();
    REQUIRE(rig.pop() == PopStatus::Chain);
    CHECK(rig.chain.readable_bytes() == 1024);
}

TEST_CASE("zero-length descriptors are accepted and carry nothing", "[virtio_queue]") {
    QueueRig rig;
    const Gpa data = rig.driver.alloc(4);
    rig.driver.write_bytes(data, std::vector<uint8_t>{1, 2, 3, 4});
    // The zero-length ones point nowhere; their address is never used.
    rig.driver.write_descriptor(0, 0xdead'0000'0000, 0, VRING_DESC_F_NEXT, 1);
    rig.driver.write_descriptor(1, data.value, 4, VRING_DESC_F_NEXT, 2);
    rig.driver.write_descriptor(2, UINT64_MAX, 0, VRING_DESC_F_WRITE, 0);
    rig.driver.push_avail(0);
    rig.driver.publish();
    REQUIRE(rig.pop() == PopStatus::Chain);
    CHECK(rig.chain.buffer_count() == 1);
    CHECK(rig.chain.readable_bytes() == 4);
    CHECK(rig.chain.writable_bytes() == 0);
    CHECK(bytes_of(rig.chain.reader()) == std::vector<uint8_t>{1, 2, 3, 4});
}

TEST_CASE("a buffer may lie in any RAM region, including the last byte", "[virtio_queue]") {
    QueueRig rig;
    rig.driver.write_descriptor(0, kRam1End - 16, 16, VRING_DESC_F_NEXT, 1);
    rig.driver.write_descriptor(1, kRam0End - 1, 1, VRING_DESC_F_WRITE, 0);
    rig.driver.push_avail(0);
    rig.driver.publish();
    REQUIRE(rig.pop() == PopStatus::Chain);
    CHECK(rig.chain.readable_bytes() == 16);
    CHECK(rig.chain.writable_bytes() == 1);
}

TEST_CASE("ring indices wrap around at 2^16", "[virtio_queue]") {
    QueueRig rig(4);
    for (uint32_t i = 0; i < 70000; ++i) {
        const uint16_t head = rig.driver.submit({static_cast<uint8_t>(i)}, 1);
        REQUIRE(rig.pop() == PopStatus::Chain);
        REQUIRE(rig.chain.head_index() == head);
        REQUIRE(rig.queue.add_used(head, 1));
        const auto used = rig.driver.used_entries();
        REQUIRE(used.size() == 1);
        REQUIRE(used[0] == UsedEntry{head, 1});
    }
    CHECK(rig.driver.used_idx() == static_cast<uint16_t>(70000));
    CHECK(rig.driver.avail_idx() == static_cast<uint16_t>(70000));
    CHECK(rig.pop() == PopStatus::Empty);
}

TEST_CASE("popping into the same chain object replaces its contents", "[virtio_queue]") {
    QueueRig rig;
    rig.driver.submit({{1, 2, 3}, {4}}, {4, 4});
    rig.driver.submit({5}, 0);
    REQUIRE(rig.pop() == PopStatus::Chain);
    CHECK(rig.chain.buffer_count() == 4);
    REQUIRE(rig.pop() == PopStatus::Chain);
    CHECK(rig.chain.buffer_count() == 1);
    CHECK(rig.chain.writable_bytes() == 0);
    CHECK(bytes_of(rig.chain.reader()) == std::vector<uint8_t>{5});
}

TEST_CASE("completions may be returned out of order", "[virtio_queue]") {
    QueueRig rig;
    const uint16_t a = rig.driver.submit({1}, 0);
    const uint16_t b = rig.driver.submit({2}, 0);
    REQUIRE(rig.pop() == PopStatus::Chain);
    REQUIRE(rig.pop() == PopStatus::Chain);
    REQUIRE(rig.queue.add_used(b, 0));
    REQUIRE(rig.queue.add_used(a, 0));
    CHECK(rig.driver.used_entries() == std::vector<UsedEntry>{{b, 0}, {a, 0}});
}

TEST_CASE("add_used refuses a head index outside the queue", "[virtio_queue]") {
    QueueRig rig;
    CHECK_FALSE(rig.queue.add_used(16, 0));
    CHECK(rig.queue.last_error() == QueueError::UsedRingWriteFailed);
    CHECK(rig.driver.used_idx() == 0);
}
