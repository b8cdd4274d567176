#pragma once

// Shared set-up for the virtqueue tests: guest RAM with a hole, a driver and
// a queue on top of it.

#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "memory/guest_memory.h"
#include "virtio/queue/queue.h"
#include "virtio_fakes/fake_driver_queue.h"

namespace keel::test {

inline constexpr uint64_t kIndirectDesc = uint64_t{1} << VIRTIO_RING_F_INDIRECT_DESC;
inline constexpr uint64_t kEventIdx = uint64_t{1} << VIRTIO_RING_F_EVENT_IDX;

// RAM: [0, 1 MiB) and [2 MiB, 2 MiB + 64 KiB); [1 MiB, 2 MiB) is a hole (like
// the MMIO hole below 4 GiB).
inline constexpr uint64_t kRam0End = 0x100000;
inline constexpr uint64_t kRam1Start = 0x200000;
inline constexpr uint64_t kRam1End = 0x210000;

inline GuestMemory make_memory() {
    return GuestMemory::create({{Gpa{0}, kRam0End}, {Gpa{kRam1Start}, kRam1End - kRam1Start}});
}

// A queue of `size` entries configured by `driver` and activated.
struct QueueRig {
    explicit QueueRig(uint16_t size = 16, uint64_t features = 0)
        : memory(make_memory()), driver(memory, size), queue(size) {
        driver.configure(queue);
        REQUIRE(queue.activate(memory, features) == virtio::QueueError::None);
    }
    // Pops one chain, expecting the queue to be broken with `error`.
    void require_broken(virtio::QueueError error) {
        REQUIRE(queue.pop(chain) == virtio::PopStatus::Broken);
        CHECK(queue.last_error() == error);
    }
    virtio::PopStatus pop() { return queue.pop(chain); }

    GuestMemory memory;
    FakeDriverQueue driver;
    virtio::Queue queue;
    virtio::DescriptorChain chain;
};

inline std::vector<uint8_t> bytes_of(const virtio::Reader& reader) {
    virtio::Reader copy = reader;
    std::vector<uint8_t> out(copy.remaining());
    REQUIRE(copy.read(out));
    return out;
}

}  // namespace keel::test
