// The device-status state machine shared by both transports (virtio 1.2
// §2.1, §2.2, §3.1.1), driven through the virtio-mmio registers.

#include <catch2/catch.hpp>

#include <linux/virtio_mmio.h>

#include "mmio_harness.h"

using namespace keel;
using namespace keel::test;

namespace {
using Harness = MmioHarness<ScriptedDevice>;

// Both queues set up from FakeDriverQueues at separate places in RAM.
struct ReadyQueues {
    explicit ReadyQueues(Harness& h) : q0(h.memory, 16, Gpa{0}), q1(h.memory, 8, Gpa{0x40000}) {
        h.setup_queue(0, q0);
        h.setup_queue(1, q1);
    }
    FakeDriverQueue q0;
    FakeDriverQueue q1;
};
}  // namespace

TEST_CASE("The status register follows the initialisation sequence up to DRIVER_OK", "[virtio][status]") {
    Harness h;
    h.set_status(kStatusAck);
    CHECK(h.status() == kStatusAck);
    h.set_status(kStatusDriver);
    CHECK(h.status() == (kStatusAck | kStatusDriver));
    h.write_driver_features(kVersion1);
    h.set_status(kStatusFeaturesOk);
    CHECK(h.status() == (kStatusAck | kStatusDriver | kStatusFeaturesOk));
    ReadyQueues queues(h);
    CHECK(h.device->activations == 0);
    h.driver_ok();
    CHECK(h.status() == (kStatusAck | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk));
    CHECK(h.device->activations == 1);
    CHECK(h.device->queues_active == std::vector<bool>{true, true});
    CHECK(h.device->kick_fds.size() == 2);
    CHECK(h.device->notifier == &h.transport);
}

TEST_CASE("A queue the driver left disabled is not activated at DRIVER_OK", "[virtio][status]") {
    Harness h;
    REQUIRE(h.negotiate(kVersion1));
    FakeDriverQueue q0(h.memory, 16);
    h.setup_queue(0, q0);
    h.driver_ok();
    CHECK(h.device->queues_active == std::vector<bool>{true, false});
    CHECK((h.status() & kStatusNeedsReset) == 0);
}

TEST_CASE("FEATURES_OK stays clear when the driver's features are not acceptable", "[virtio][status]") {
    Harness h;
    SECTION("a bit the device did not offer") { CHECK_FALSE(h.negotiate(kVersion1 | (1ull << 5))); }
    SECTION("no VIRTIO_F_VERSION_1") { CHECK_FALSE(h.negotiate(1ull)); }
    SECTION("a bit beyond bit 63") {
        h.set_status(kStatusAck | kStatusDriver);
        h.write_driver_features(kVersion1);
        h.write32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 2);
        h.write32(VIRTIO_MMIO_DRIVER_FEATURES, 1);
        h.set_status(kStatusFeaturesOk);
        CHECK((h.status() & kStatusFeaturesOk) == 0);
    }
    SECTION("before ACKNOWLEDGE and DRIVER") {
        h.write_driver_features(kVersion1);
        h.write32(VIRTIO_MMIO_STATUS, kStatusFeaturesOk);
        CHECK((h.status() & kStatusFeaturesOk) == 0);
    }
    // And the device never runs.
    h.driver_ok();
    CHECK(h.device->activations == 0);
    CHECK((h.status() & kStatusDriverOk) == 0);
}

TEST_CASE("Driver features cannot change once FEATURES_OK is set", "[virtio][status]") {
    Harness h;
    REQUIRE(h.negotiate(kVersion1));
    h.write_driver_features(kVersion1 | 1ull);
    CHECK(h.transport.core().acked_features() == kVersion1);
}

TEST_CASE("DRIVER_OK without FEATURES_OK is refused", "[virtio][status]") {
    Harness h;
    h.set_status(kStatusAck | kStatusDriver);
    h.driver_ok();
    CHECK((h.status() & kStatusDriverOk) == 0);
    CHECK(h.device->activations == 0);
}

TEST_CASE("A driver cannot clear status bits except by writing 0", "[virtio][status]") {
    Harness h;
    REQUIRE(h.negotiate(kVersion1));
    h.write32(VIRTIO_MMIO_STATUS, kStatusAck);
    CHECK(h.status() == (kStatusAck | kStatusDriver | kStatusFeaturesOk));
    h.set_status(kStatusNeedsReset);  // the device's bit: ignored
    CHECK((h.status() & kStatusNeedsReset) == 0);
    h.set_status(kStatusFailed);
    CHECK((h.status() & kStatusFailed) != 0);
    h.driver_ok();  // the driver gave up: no activation
    CHECK(h.device->activations == 0);
}

TEST_CASE("Writing 0 to the status register resets device, queues, features and interrupts", "[virtio][status]") {
    Harness h;
    REQUIRE(h.negotiate(kVersion1 | 1ull));
    ReadyQueues queues(h);
    h.driver_ok();
    h.notify(0);
    h.transport.signal_used_queue(0);
    h.write32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    const uint64_t resets_before = h.counter("resets");

    h.write32(VIRTIO_MMIO_STATUS, 0);

    CHECK(h.device->resets == 1);
    CHECK(h.status() == 0);
    CHECK(h.read32(VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
    const auto& core = h.transport.core();
    CHECK(core.acked_features() == 0);
    CHECK(core.device_features_select() == 0);
    CHECK(core.queue_select() == 0);
    for (uint32_t q = 0; q < 2; ++q) {
        h.write32(VIRTIO_MMIO_QUEUE_SEL, q);
        CHECK(h.read32(VIRTIO_MMIO_QUEUE_READY) == 0);
        CHECK(core.queue_size() == core.queue_max_size());
        CHECK(core.queue_address(virtio::QueueAddress::Desc) == 0);
        CHECK(core.queue_address(virtio::QueueAddress::Device) == 0);
        CHECK_FALSE(fd_readable(core.kick_fds()[q]));
    }
    CHECK(h.counter("resets") == resets_before + 1);
    // And the device comes up again.
    REQUIRE(h.negotiate(kVersion1));
    ReadyQueues again(h);
    h.driver_ok();
    CHECK(h.device->activations == 2);
}

TEST_CASE("Queue registers are ignored after DRIVER_OK and while the queue is ready", "[virtio][status]") {
    Harness h;
    REQUIRE(h.negotiate(kVersion1));
    ReadyQueues queues(h);
    const auto& core = h.transport.core();
    h.write32(VIRTIO_MMIO_QUEUE_SEL, 0);
    h.write32(VIRTIO_MMIO_QUEUE_NUM, 2);  // queue 0 is ready
    CHECK(core.queue_size() == 16);
    h.driver_ok();
    h.write32(VIRTIO_MMIO_QUEUE_READY, 0);
    h.write_address(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x5000);
    CHECK(h.read32(VIRTIO_MMIO_QUEUE_READY) == 1);
    CHECK(core.queue_address(virtio::QueueAddress::Desc) == queues.q0.desc_table().value);
}

TEST_CASE("An invalid queue at DRIVER_OK sets DEVICE_NEEDS_RESET and the device is not activated",
          "[virtio][status]") {
    Harness h;
    REQUIRE(h.negotiate(kVersion1));
    FakeDriverQueue q0(h.memory, 16);
    h.setup_queue(0, q0);
    h.write32(VIRTIO_MMIO_QUEUE_SEL, 1);
    SECTION("size not a power of two") {
        h.write32(VIRTIO_MMIO_QUEUE_NUM, 3);
    }
    SECTION("size above the maximum") {
        h.write32(VIRTIO_MMIO_QUEUE_NUM, 16);
    }
    SECTION("ring outside guest RAM") {
        h.write32(VIRTIO_MMIO_QUEUE_NUM, 8);
        h.write_address(VIRTIO_MMIO_QUEUE_USED_LOW, 0xfff'0000'0000);
    }
    h.write32(VIRTIO_MMIO_QUEUE_READY, 1);
    h.driver_ok();
    CHECK((h.status() & kStatusNeedsReset) != 0);
    CHECK((h.status() & kStatusDriverOk) != 0);
    CHECK(h.device->activations == 0);
    // §2.1.2: the driver hears about it through a config-change interrupt.
    CHECK(h.read32(VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_CONFIG);
    CHECK(h.irq->count == 1);
    CHECK(h.counter("needs_reset") == 1);
    // A reset clears it.
    h.write32(VIRTIO_MMIO_STATUS, 0);
    CHECK(h.status() == 0);
}

TEST_CASE("A device that refuses activation gets DEVICE_NEEDS_RESET", "[virtio][status]") {
    Harness h;
    h.device->accept_activation = false;
    REQUIRE(h.negotiate(kVersion1));
    ReadyQueues queues(h);
    h.driver_ok();
    CHECK(h.device->activations == 1);
    CHECK((h.status() & kStatusNeedsReset) != 0);
    h.write32(VIRTIO_MMIO_STATUS, 0);
    CHECK(h.device->resets == 1);
}

TEST_CASE("DEVICE_NEEDS_RESET from the device raises one config interrupt until the next reset",
          "[virtio][status]") {
    Harness h;
    REQUIRE(h.negotiate(kVersion1));
    ReadyQueues queues(h);
    h.driver_ok();
    REQUIRE(h.device->notifier != nullptr);
    h.device->notifier->set_needs_reset();
    h.device->notifier->set_needs_reset();
    CHECK((h.status() & kStatusNeedsReset) != 0);
    CHECK(h.irq->count == 1);
    CHECK(h.counter("needs_reset") == 1);
    // The driver's next status write keeps the bit.
    h.set_status(kStatusFailed);
    CHECK((h.status() & kStatusNeedsReset) != 0);
    h.write32(VIRTIO_MMIO_STATUS, 0);
    CHECK(h.status() == 0);
}

TEST_CASE("A transport refuses a device it cannot carry", "[virtio][status]") {
    auto memory = GuestMemory::create({{Gpa{0}, 1 << 20}});
    FakeEventRegistry events;
    auto irq = std::make_shared<CountingIrq>();
    auto device = std::make_shared<ScriptedDevice>();
    SECTION("no queue") { device->max_sizes = {}; }
    SECTION("a queue size that is not a power of two") { device->max_sizes = {16, 12}; }
    SECTION("a queue size of 0") { device->max_sizes = {0}; }
    CHECK_THROWS_AS(virtio::VirtioMmioTransport(device, memory, events, irq, kTestSlot), Error);
}
