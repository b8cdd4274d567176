// GuestMemory's ring-index accessors, used by the queue for avail.idx and
// used.idx.

#include <catch2/catch.hpp>

#include "queue_test_support.h"

using namespace keel;
using namespace keel::test;

TEST_CASE("ring index accessors round-trip an aligned 16-bit value in RAM", "[virtio_queue][memory]") {
    auto memory = make_memory();
    REQUIRE(memory.store_release_u16(Gpa{kRam1Start + 2}, 0xbeef));
    CHECK(memory.load_acquire_u16(Gpa{kRam1Start + 2}) == std::optional<uint16_t>(0xbeef));
    CHECK(memory.read_obj<uint16_t>(Gpa{kRam1Start + 2}) == std::optional<uint16_t>(0xbeef));
    CHECK(memory.load_acquire_u16(Gpa{kRam1End - 2}).has_value());
}

TEST_CASE("ring index accessors refuse misaligned or out-of-RAM addresses", "[virtio_queue][memory]") {
    auto memory = make_memory();
    CHECK_FALSE(memory.load_acquire_u16(Gpa{1}).has_value());
    CHECK_FALSE(memory.store_release_u16(Gpa{3}, 1));
    CHECK_FALSE(memory.load_acquire_u16(Gpa{kRam0End}).has_value());
    CHECK_FALSE(memory.store_release_u16(Gpa{kRam1End}, 1));
    CHECK_FALSE(memory.load_acquire_u16(Gpa{UINT64_MAX - 1}).has_value());
}
