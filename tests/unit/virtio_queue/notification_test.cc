// Notification suppression in both directions (virtio 1.2 §2.7.7, §2.7.10),
// with and without VIRTIO_RING_F_EVENT_IDX.

#include <catch2/catch.hpp>

#include "queue_test_support.h"

using namespace keel;
using namespace keel::test;
using virtio::PopStatus;

namespace {

// The driver submits one chain, the device pops it and returns it.
void round_trip(QueueRig& rig) {
    const uint16_t head = rig.driver.submit({1}, 0);
    REQUIRE(rig.pop() == PopStatus::Chain);
    REQUIRE(rig.queue.add_used(head, 0));
}

}  // namespace

TEST_CASE("without EVENT_IDX the device notifies unless the driver set NO_INTERRUPT", "[virtio_queue][notify]") {
    QueueRig rig;
    round_trip(rig);
    CHECK(rig.queue.needs_notification());
    rig.driver.set_no_interrupt(true);
    round_trip(rig);
    CHECK_FALSE(rig.queue.needs_notification());
    rig.driver.set_no_interrupt(false);
    round_trip(rig);
    CHECK(rig.queue.needs_notification());
}

TEST_CASE("no notification is needed when nothing was used since the last check", "[virtio_queue][notify]") {
    for (const uint64_t features : {uint64_t{0}, kEventIdx}) {
        QueueRig rig(16, features);
        round_trip(rig);
        CHECK(rig.queue.needs_notification());
        CHECK_FALSE(rig.queue.needs_notification());
    }
}

TEST_CASE("with EVENT_IDX the device notifies once used.idx passes used_event", "[virtio_queue][notify]") {
    QueueRig rig(16, kEventIdx);
    rig.driver.set_used_event(2);           // "interrupt me after entry 2 is used"
    round_trip(rig);                        // used.idx 1
    CHECK(rig.queue.needs_notification());  // the first check has no history: notify
    round_trip(rig);                        // used.idx 2
    CHECK_FALSE(rig.queue.needs_notification());
    round_trip(rig);  // used.idx 3: passed entry 2
    CHECK(rig.queue.needs_notification());
    round_trip(rig);  // used.idx 4
    CHECK_FALSE(rig.queue.needs_notification());
}

TEST_CASE("with EVENT_IDX a batch that crosses used_event notifies once", "[virtio_queue][notify]") {
    QueueRig rig(16, kEventIdx);
    round_trip(rig);
    REQUIRE(rig.queue.needs_notification());
    rig.driver.set_used_event(3);
    for (int i = 0; i < 4; ++i) round_trip(rig);  // used.idx 1 -> 5 crosses 3
    CHECK(rig.queue.needs_notification());
    rig.driver.set_used_event(100);
    for (int i = 0; i < 4; ++i) round_trip(rig);  // 5 -> 9 does not reach 100
    CHECK_FALSE(rig.queue.needs_notification());
}

TEST_CASE("with EVENT_IDX the NO_INTERRUPT flag is ignored", "[virtio_queue][notify]") {
    // §2.7.7.2: with EVENT_IDX the device MUST ignore the flags' lower bit.
    QueueRig rig(16, kEventIdx);
    rig.driver.set_no_interrupt(true);
    round_trip(rig);
    CHECK(rig.queue.needs_notification());
    rig.driver.set_used_event(1);
    round_trip(rig);  // used.idx 1 -> 2 passes 1
    CHECK(rig.queue.needs_notification());
}

TEST_CASE("with EVENT_IDX used_event is compared modulo 2^16", "[virtio_queue][notify]") {
    QueueRig rig(4, kEventIdx);
    for (int i = 0; i < 0xfffe; ++i) {
        const uint16_t head = rig.driver.submit({}, 1);
        if (rig.pop() != PopStatus::Chain || !rig.queue.add_used(head, 0)) FAIL("round trip failed");
        (void)rig.driver.used_entries();
    }
    (void)rig.queue.needs_notification();  // history: used.idx 0xfffe
    rig.driver.set_used_event(0xffff);
    round_trip(rig);  // 0xfffe -> 0xffff: not past 0xffff yet
    CHECK_FALSE(rig.queue.needs_notification());
    (void)rig.driver.used_entries();
    round_trip(rig);  // 0xffff -> 0x0000: passed
    CHECK(rig.queue.needs_notification());
    CHECK(rig.driver.used_idx() == 0);
}

TEST_CASE("without EVENT_IDX disabling notifications sets NO_NOTIFY and enabling clears it", "[virtio_queue][notify]") {
    QueueRig rig;
    CHECK(rig.driver.kick_needed(0, false));
    rig.queue.disable_notification();
    CHECK(rig.driver.device_set_no_notify());
    CHECK_FALSE(rig.driver.kick_needed(0, false));
    CHECK_FALSE(rig.queue.enable_notification());  // nothing published meanwhile
    CHECK_FALSE(rig.driver.device_set_no_notify());
}

TEST_CASE("enable_notification reports chains published while notifications were off", "[virtio_queue][notify]") {
    for (const uint64_t features : {uint64_t{0}, kEventIdx}) {
        QueueRig rig(16, features);
        rig.queue.disable_notification();
        CHECK(rig.pop() == PopStatus::Empty);
        // The driver publishes and (seeing suppression) does not kick; without
        // the re-check the device would sleep on a non-empty ring.
        rig.driver.submit({1}, 0);
        CHECK(rig.queue.enable_notification());
        CHECK(rig.pop() == PopStatus::Chain);
        CHECK(rig.pop() == PopStatus::Empty);
        CHECK_FALSE(rig.queue.enable_notification());
    }
}

TEST_CASE("with EVENT_IDX draining to empty asks for a kick on the next chain", "[virtio_queue][notify]") {
    QueueRig rig(8, kEventIdx);
    for (int i = 0; i < 20; ++i) {
        const uint16_t old_idx = rig.driver.avail_idx();
        rig.driver.submit({1}, 0);
        CHECK(rig.driver.kick_needed(old_idx, true));
        REQUIRE(rig.pop() == PopStatus::Chain);
        REQUIRE(rig.pop() == PopStatus::Empty);
        CHECK(rig.driver.avail_event() == rig.driver.avail_idx());
        (void)rig.queue.add_used(rig.chain.head_index(), 0);
        (void)rig.driver.used_entries();
    }
}

TEST_CASE("with EVENT_IDX disabled notifications leave avail_event behind", "[virtio_queue][notify]") {
    QueueRig rig(8, kEventIdx);
    rig.driver.submit({1}, 0);
    REQUIRE(rig.pop() == PopStatus::Chain);
    REQUIRE(rig.pop() == PopStatus::Empty);  // avail_event = 1
    rig.queue.disable_notification();
    uint16_t old_idx = rig.driver.avail_idx();
    rig.driver.submit({2}, 0);  // 1 -> 2 crosses avail_event 1: kick
    CHECK(rig.driver.kick_needed(old_idx, true));
    REQUIRE(rig.pop() == PopStatus::Chain);
    REQUIRE(rig.pop() == PopStatus::Empty);  // disabled: avail_event stays 1
    CHECK(rig.driver.avail_event() == 1);
    old_idx = rig.driver.avail_idx();
    rig.driver.submit({3}, 0);  // 2 -> 3: no kick while the device is busy
    CHECK_FALSE(rig.driver.kick_needed(old_idx, true));
    CHECK(rig.queue.enable_notification());  // and the device finds it itself
    CHECK(rig.driver.avail_event() == 2);
    REQUIRE(rig.pop() == PopStatus::Chain);
}
