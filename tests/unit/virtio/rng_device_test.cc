// virtio-rng (virtio 1.2 §5.4) end to end: a FakeDriverQueue plays the
// driver, the virtio-mmio transport carries the device, FakeEventRegistry
// plays the event loop.

#include <catch2/catch.hpp>

#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>

#include <algorithm>
#include <cerrno>
#include <functional>

#include "mmio_harness.h"
#include "virtio/rng_device.h"
#include "virtio_fakes/fake_notifier.h"

using namespace keel;
using namespace keel::test;
using keel::virtio::RngDevice;

namespace {

constexpr uint64_t kEventIdx = 1ull << VIRTIO_RING_F_EVENT_IDX;
constexpr uint64_t kIndirect = 1ull << VIRTIO_RING_F_INDIRECT_DESC;

// The rng behind a virtio-mmio transport, brought up to DRIVER_OK with a
// 256-entry queue at the start of RAM.
struct RngRig {
    explicit RngRig(uint64_t features, const std::function<virtio::EntropySource()>& make = nullptr)
        : h(std::make_shared<RngDevice>(make ? make() : virtio::EntropySource(virtio::getrandom_nonblocking))),
          driver(h.memory, RngDevice::kQueueSize) {
        REQUIRE(h.negotiate(kVersion1 | features));
        h.setup_queue(0, driver);
        h.driver_ok();
        REQUIRE(h.status() == (kStatusAck | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk));
        kick_fd = h.transport.core().kick_fds()[0];
        REQUIRE(h.events.contains(kick_fd));
    }
    // The driver kicks through the MMIO register; the event loop runs.
    void kick_and_run() {
        h.notify(0);
        h.events.run_ready();
    }
    [[nodiscard]] bool needs_reset() { return (h.status() & kStatusNeedsReset) != 0; }

    MmioHarness<RngDevice> h;
    FakeDriverQueue driver;
    int kick_fd = -1;
};

bool all_poison(const std::vector<uint8_t>& bytes) {
    return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == FakeDriverQueue::kPoison; });
}

}  // namespace

TEST_CASE("virtio-rng offers one 256-entry queue, VERSION_1, EVENT_IDX, INDIRECT_DESC and no config space",
          "[virtio][rng]") {
    RngDevice rng;
    CHECK(rng.device_type() == VIRTIO_ID_RNG);
    CHECK(rng.queue_max_sizes() == std::vector<uint16_t>{256});
    CHECK(rng.device_features() == (kVersion1 | kEventIdx | kIndirect));
    std::array<uint8_t, 4> config{0xff, 0xff, 0xff, 0xff};
    rng.read_config(0, config);
    CHECK(config == std::array<uint8_t, 4>{});
}

TEST_CASE("virtio-rng fills every writable buffer of a request and reports the bytes written", "[virtio][rng]") {
    RngRig rig(0);
    const uint16_t head = rig.driver.submit({}, 1000);
    const uint16_t split = rig.driver.submit(std::vector<std::vector<uint8_t>>{}, {16, 4096, 3});
    rig.kick_and_run();

    const auto used = rig.driver.used_entries();
    REQUIRE(used.size() == 2);
    CHECK(used[0] == UsedEntry{head, 1000});
    CHECK(used[1] == UsedEntry{split, 16 + 4096 + 3});
    // Random bytes replaced the poison (a run of 16 poison bytes by chance is
    // 2^-128 likely).
    const auto bytes = rig.driver.written(split);
    for (size_t at = 0; at + 16 <= bytes.size(); at += 16) {
        CHECK_FALSE(all_poison({bytes.begin() + static_cast<ptrdiff_t>(at),
                                bytes.begin() + static_cast<ptrdiff_t>(at + 16)}));
    }
    CHECK(rig.h.irq->count == 1);
    CHECK(rig.h.counter("requests") == 2);
    CHECK(rig.h.counter("bytes") == 1000 + 16 + 4096 + 3);
    CHECK(rig.h.counter("errors") == 0);
}

TEST_CASE("virtio-rng serves indirect chains when INDIRECT_DESC is negotiated", "[virtio][rng]") {
    RngRig rig(kIndirect);
    const uint16_t head = rig.driver.add_indirect_chain({}, {64, 64});
    rig.driver.publish();
    rig.kick_and_run();
    const auto used = rig.driver.used_entries();
    REQUIRE(used.size() == 1);
    CHECK(used[0] == UsedEntry{head, 128});
    CHECK_FALSE(rig.needs_reset());
}

TEST_CASE("virtio-rng caps one request at 64 KiB", "[virtio][rng]") {
    RngRig rig(0);
    const uint16_t head = rig.driver.submit({}, 200 * 1024);
    rig.kick_and_run();
    const auto used = rig.driver.used_entries();
    REQUIRE(used.size() == 1);
    CHECK(used[0] == UsedEntry{head, RngDevice::kMaxBytesPerRequest});
    const auto tail = rig.driver.written(head);
    CHECK(all_poison({tail.begin() + RngDevice::kMaxBytesPerRequest, tail.end()}));
}

TEST_CASE("Without EVENT_IDX virtio-rng interrupts after a batch unless the driver set NO_INTERRUPT",
          "[virtio][rng]") {
    RngRig rig(0);
    rig.driver.add_chain({}, {8});
    rig.driver.add_chain({}, {8});
    rig.driver.publish();
    rig.kick_and_run();
    CHECK(rig.driver.used_entries().size() == 2);
    CHECK(rig.h.irq->count == 1);  // one interrupt for the batch
    CHECK(rig.h.read32(VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_VRING);

    rig.driver.set_no_interrupt(true);
    rig.driver.submit({}, 8);
    rig.kick_and_run();
    CHECK(rig.driver.used_entries().size() == 1);
    CHECK(rig.h.irq->count == 1);
    CHECK(rig.h.counter("used_notifications") == 1);
}

TEST_CASE("With EVENT_IDX virtio-rng interrupts only when used_event is passed", "[virtio][rng]") {
    RngRig rig(kEventIdx);
    // The first completion after activation always interrupts.
    rig.driver.submit({}, 8);
    rig.kick_and_run();
    CHECK(rig.h.irq->count == 1);
    rig.h.write32(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);  // as the driver's handler does
    // "Interrupt me once the fourth used entry is written" (used_event = 3).
    rig.driver.set_used_event(3);
    rig.driver.submit({}, 8);
    rig.kick_and_run();
    rig.driver.submit({}, 8);
    rig.kick_and_run();
    CHECK(rig.driver.used_entries().size() == 3);
    CHECK(rig.h.irq->count == 1);
    rig.driver.submit({}, 8);
    rig.kick_and_run();
    CHECK(rig.driver.used_entries().size() == 1);
    CHECK(rig.h.irq->count == 2);
    // After draining, the device asks to be kicked for the next chain.
    CHECK(rig.driver.avail_event() == rig.driver.avail_idx());
}

TEST_CASE("virtio-rng serves chains published before the kick arrives", "[virtio][rng]") {
    RngRig rig(kEventIdx);
    // A driver that publishes without kicking (it saw avail_event behind):
    // nothing happens until the event loop runs the device again.
    rig.driver.submit({}, 8);
    rig.h.events.run_ready();
    CHECK(rig.driver.used_entries().empty());
    rig.kick_and_run();
    CHECK(rig.driver.used_entries().size() == 1);
}

TEST_CASE("A request with a device-readable buffer sets DEVICE_NEEDS_RESET and the device stops",
          "[virtio][rng]") {
    RngRig rig(0);
    rig.driver.submit({1, 2, 3}, 16);
    rig.kick_and_run();
    CHECK(rig.needs_reset());
    CHECK(rig.driver.used_entries().empty());
    CHECK(rig.h.counter("errors") == 1);
    // Later requests are not served until the driver resets the device.
    rig.driver.submit({}, 16);
    rig.kick_and_run();
    CHECK(rig.driver.used_entries().empty());

    rig.h.write32(VIRTIO_MMIO_STATUS, 0);
    CHECK_FALSE(rig.h.events.contains(rig.kick_fd));
    CHECK(rig.h.status() == 0);
}

TEST_CASE("Hostile rings set DEVICE_NEEDS_RESET without crashing virtio-rng", "[virtio][rng]") {
    RngRig rig(0);
    SECTION("head index out of range") {
        rig.driver.write_avail_entry(0, 999);
        rig.driver.set_avail_idx(1);
    }
    SECTION("a descriptor loop") {
        const Gpa buffer = rig.driver.alloc(16);
        rig.driver.write_descriptor(0, buffer.value, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
        rig.driver.write_descriptor(1, buffer.value, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
        rig.driver.write_avail_entry(0, 0);
        rig.driver.set_avail_idx(1);
    }
    SECTION("a buffer outside guest RAM") {
        rig.driver.write_descriptor(0, 0xffff'0000'0000, 16, VRING_DESC_F_WRITE, 0);
        rig.driver.write_avail_entry(0, 0);
        rig.driver.set_avail_idx(1);
    }
    SECTION("avail.idx far ahead of the device") { rig.driver.set_avail_idx(5000); }
    SECTION("an indirect descriptor that was not negotiated") {
        rig.driver.add_indirect_chain({}, {16});
        rig.driver.publish();
    }
    rig.kick_and_run();
    CHECK(rig.needs_reset());
    CHECK(rig.h.read32(VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_CONFIG);
    CHECK(rig.h.counter("errors") == 1);
}

TEST_CASE("When the host has no entropy yet virtio-rng completes the request with length 0", "[virtio][rng]") {
    RngRig rig(0, [] {
        return virtio::EntropySource([](std::span<uint8_t>) -> ssize_t { return -EAGAIN; });
    });
    const uint16_t head = rig.driver.submit({}, 32);
    rig.kick_and_run();
    const auto used = rig.driver.used_entries();
    REQUIRE(used.size() == 1);
    CHECK(used[0] == UsedEntry{head, 0});
    CHECK_FALSE(rig.needs_reset());
    CHECK(rig.h.counter("errors") == 0);
}

TEST_CASE("A short read from the entropy source gives a short used length", "[virtio][rng]") {
    RngRig rig(0, [] {
        return virtio::EntropySource([calls = 0](std::span<uint8_t> buffer) mutable -> ssize_t {
            if (calls++ > 0) return -EIO;
            std::fill_n(buffer.begin(), 10, uint8_t{1});
            return 10;
        });
    });
    const uint16_t head = rig.driver.submit({}, 32);
    rig.kick_and_run();
    const auto used = rig.driver.used_entries();
    REQUIRE(used.size() == 1);
    CHECK(used[0] == UsedEntry{head, 10});
    CHECK(rig.h.counter("errors") == 1);
}

TEST_CASE("virtio-rng serves a bounded number of chains per wakeup and comes back for the rest", "[virtio][rng]") {
    // The driver keeps the queue full while the device drains it, as a vCPU
    // racing the event loop would.
    FakeDriverQueue* driver = nullptr;
    RngRig rig(0, [&driver] {
        return virtio::EntropySource([&driver](std::span<uint8_t> buffer) -> ssize_t {
            std::fill(buffer.begin(), buffer.end(), uint8_t{7});
            if (driver != nullptr) {
                [[maybe_unused]] auto reclaimed = driver->used_entries();
                driver->submit({}, 4);
            }
            return static_cast<ssize_t>(buffer.size());
        });
    });
    driver = &rig.driver;
    rig.driver.submit({}, 4);
    rig.h.notify(0);
    REQUIRE(rig.h.events.run(rig.kick_fd));
    CHECK(rig.h.counter("requests") == RngDevice::kMaxChainsPerWakeup);
    CHECK(fd_readable(rig.kick_fd));  // the device re-kicked itself
    driver = nullptr;                 // the driver stops refilling
    rig.h.events.run_ready();
    CHECK(rig.h.counter("requests") == RngDevice::kMaxChainsPerWakeup + 1);
    CHECK_FALSE(fd_readable(rig.kick_fd));
}

TEST_CASE("After a reset virtio-rng leaves the event loop and ignores kicks", "[virtio][rng]") {
    RngRig rig(0);
    rig.h.write32(VIRTIO_MMIO_STATUS, 0);
    CHECK(rig.h.device->counters()[0].second == 0);
    CHECK_FALSE(rig.h.events.contains(rig.kick_fd));
    rig.driver.submit({}, 8);
    rig.kick_and_run();
    CHECK(rig.h.counter("requests") == 0);
}

TEST_CASE("virtio-rng with a disabled queue activates and never subscribes", "[virtio][rng]") {
    auto memory = GuestMemory::create({{Gpa{0}, 1 << 20}});
    FakeEventRegistry events;
    FakeNotifier notifier;
    RngDevice rng;
    std::vector<virtio::Queue> queues;
    queues.emplace_back(RngDevice::kQueueSize);
    const std::array<int, 1> fds{-1};
    const virtio::ActivationContext context{memory, queues, fds, kVersion1, notifier, events};
    CHECK(rng.activate(context));
    CHECK(events.size() == 0);
    rng.reset();
    CHECK(events.removes() == 0);
}

TEST_CASE("virtio-rng refuses an activation with the wrong number of queues", "[virtio][rng]") {
    auto memory = GuestMemory::create({{Gpa{0}, 1 << 20}});
    FakeEventRegistry events;
    FakeNotifier notifier;
    RngDevice rng;
    std::vector<virtio::Queue> queues;
    const virtio::ActivationContext context{memory, queues, {}, kVersion1, notifier, events};
    CHECK_FALSE(rng.activate(context));
}
