#include <catch2/catch.hpp>

#include "queue_test_support.h"
#include "virtio/queue/queue_error.h"

using namespace keel;
using namespace keel::test;
using virtio::PopStatus;
using virtio::Queue;
using virtio::QueueError;

namespace {

// A queue of max size 16 whose driver-programmed fields a test then spoils.
struct Unactivated {
    GuestMemory memory = make_memory();
    FakeDriverQueue driver{memory, 16};
    Queue queue{16};
    Unactivated() { driver.configure(queue); }
    QueueError activate() { return queue.activate(memory, 0); }
};

}  // namespace

TEST_CASE("a well-formed queue activates and starts empty", "[virtio_queue]") {
    Unactivated q;
    REQUIRE(q.activate() == QueueError::None);
    CHECK(q.queue.active());
    virtio::DescriptorChain chain;
    CHECK(q.queue.pop(chain) == PopStatus::Empty);
    CHECK(q.queue.last_error() == QueueError::None);
}

TEST_CASE("a queue starts at its maximum size with rings at zero, not ready", "[virtio_queue]") {
    const Queue queue(256);
    CHECK(queue.max_size() == 256);
    CHECK(queue.size() == 256);
    CHECK(queue.desc_table() == Gpa{0});
    CHECK_FALSE(queue.ready());
    CHECK_FALSE(queue.active());
}

TEST_CASE("a queue size of zero or above the maximum is refused", "[virtio_queue]") {
    Unactivated q;
    q.queue.set_size(0);
    CHECK(q.activate() == QueueError::SizeZeroOrTooLarge);
    q.queue.set_size(32);
    CHECK(q.activate() == QueueError::SizeZeroOrTooLarge);
    CHECK_FALSE(q.queue.active());
    CHECK(q.queue.last_error() == QueueError::SizeZeroOrTooLarge);
}

TEST_CASE("a queue size that is not a power of two is refused", "[virtio_queue]") {
    Unactivated q;
    for (const uint16_t size : {uint16_t{3}, uint16_t{6}, uint16_t{12}, uint16_t{15}}) {
        q.queue.set_size(size);
        CHECK(q.activate() == QueueError::SizeNotPowerOfTwo);
    }
    q.queue.set_size(8);
    CHECK(q.activate() == QueueError::None);
}

TEST_CASE("misaligned rings are refused", "[virtio_queue]") {
    Unactivated q;
    SECTION("descriptor table not 16-aligned") {
        q.queue.set_desc_table(Gpa{0x8});
    }
    SECTION("avail ring not 2-aligned") {
        q.queue.set_avail_ring(Gpa{q.driver.avail_ring().value + 1});
    }
    SECTION("used ring not 4-aligned") {
        q.queue.set_used_ring(Gpa{q.driver.used_ring().value + 2});
    }
    CHECK(q.activate() == QueueError::RingMisaligned);
    CHECK_FALSE(q.queue.active());
}

TEST_CASE("rings outside guest RAM are refused", "[virtio_queue]") {
    Unactivated q;
    SECTION("descriptor table straddling the end of a region") {
        q.queue.set_desc_table(Gpa{kRam0End - 0x80});
    }
    SECTION("avail ring in the hole") {
        q.queue.set_avail_ring(Gpa{kRam0End + 0x1000});
    }
    SECTION("used ring past the end of RAM") {
        q.queue.set_used_ring(Gpa{kRam1End});
    }
    SECTION("descriptor table at the top of the address space") {
        q.queue.set_desc_table(Gpa{0xffff'ffff'ffff'fff0});
    }
    SECTION("used ring whose avail_event trailer falls off the region") {
        // flags + idx + 16 elements end exactly at the region end; the
        // 2-byte trailer would not fit.
        q.queue.set_used_ring(Gpa{kRam1End - (4 + 8 * 16)});
    }
    SECTION("avail ring whose used_event trailer falls off the region") {
        q.queue.set_avail_ring(Gpa{kRam1End - (4 + 2 * 16)});
    }
    CHECK(q.activate() == QueueError::RingOutOfGuestMemory);
    CHECK_FALSE(q.queue.active());
}

TEST_CASE("rings that end exactly at the end of a region are accepted", "[virtio_queue]") {
    Unactivated q;
    q.queue.set_desc_table(Gpa{kRam1End - 16 * 16});
    q.queue.set_avail_ring(Gpa{kRam1End - 16 * 16 - (6 + 2 * 16) - 2});
    q.queue.set_used_ring(Gpa{kRam1Start});
    CHECK(q.activate() == QueueError::None);
}

TEST_CASE("an inactive or failed queue pops nothing and accepts no used entries", "[virtio_queue]") {
    Unactivated q;
    virtio::DescriptorChain chain;
    CHECK(q.queue.pop(chain) == PopStatus::Empty);
    CHECK_FALSE(q.queue.add_used(0, 0));
    CHECK_FALSE(q.queue.needs_notification());
    CHECK_FALSE(q.queue.enable_notification());
    q.queue.set_size(5);
    REQUIRE(q.activate() == QueueError::SizeNotPowerOfTwo);
    CHECK(q.queue.pop(chain) == PopStatus::Broken);
    CHECK_FALSE(q.queue.add_used(0, 0));
}

TEST_CASE("reset returns the queue to its power-on state", "[virtio_queue]") {
    QueueRig rig;
    rig.driver.submit({1}, 0);
    REQUIRE(rig.pop() == PopStatus::Chain);
    rig.queue.reset();
    CHECK_FALSE(rig.queue.active());
    CHECK_FALSE(rig.queue.ready());
    CHECK(rig.queue.size() == 16);
    CHECK(rig.queue.used_ring() == Gpa{0});
    CHECK(rig.queue.last_error() == QueueError::None);
    CHECK(rig.pop() == PopStatus::Empty);
}

TEST_CASE("re-activation starts again from ring index zero", "[virtio_queue]") {
    QueueRig rig;
    rig.driver.submit({1}, 0);
    REQUIRE(rig.pop() == PopStatus::Chain);
    // A new driver instance over the same memory, as after a device reset.
    FakeDriverQueue driver2(rig.memory, 16);
    driver2.configure(rig.queue);
    REQUIRE(rig.queue.activate(rig.memory, 0) == QueueError::None);
    const uint16_t head = driver2.submit({2}, 0);
    REQUIRE(rig.pop() == PopStatus::Chain);
    CHECK(rig.chain.head_index() == head);
}

TEST_CASE("every queue error has a description", "[virtio_queue]") {
    for (int e = 0; e <= static_cast<int>(QueueError::UsedRingWriteFailed); ++e) {
        const std::string text = virtio::describe(static_cast<QueueError>(e));
        CHECK_FALSE(text.empty());
        CHECK(text != "unknown queue error");
    }
}
