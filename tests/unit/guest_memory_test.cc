#include <catch2/catch.hpp>

#include <sys/mman.h>

#include <array>

#include "common/error.h"
#include "memory/guest_memory.h"

using namespace keel;

namespace {
GuestMemory two_regions() {
    return GuestMemory::create({{Gpa(0), 0x10000}, {Gpa(0x100000), 0x2000}});
}
}  // namespace

TEST_CASE("guest memory round-trips bytes and objects inside a region", "[memory]") {
    auto mem = two_regions();
    const std::array<uint8_t, 4> in{1, 2, 3, 4};
    REQUIRE(mem.write(Gpa(0x100), in));
    std::array<uint8_t, 4> out{};
    REQUIRE(mem.read(Gpa(0x100), out));
    CHECK(out == in);
    REQUIRE(mem.write_obj<uint64_t>(Gpa(0x100ff8), 0x1122334455667788));
    CHECK(mem.read_obj<uint64_t>(Gpa(0x100ff8)).value() == 0x1122334455667788);
    CHECK(mem.total_size() == 0x12000);
}

TEST_CASE("guest memory checks the whole range, not only its start", "[memory]") {
    auto mem = two_regions();
    std::array<uint8_t, 8> buf{};
    CHECK_FALSE(mem.read(Gpa(0xfffc), buf));        // straddles the end of region 0
    CHECK_FALSE(mem.read(Gpa(0x10000), buf));       // in the gap
    CHECK_FALSE(mem.read(Gpa(0x101ffc), buf));      // straddles the end of region 1
    CHECK_FALSE(mem.read(Gpa(UINT64_MAX - 3), buf)); // would wrap
    CHECK_FALSE(mem.slice(Gpa(0), UINT64_MAX).has_value());
    CHECK_FALSE(mem.read_obj<uint64_t>(Gpa(0x10000)).has_value());
    CHECK(mem.slice(Gpa(0xfff8), 8).has_value());
}

TEST_CASE("setup writes that do not fit throw a message naming what was written", "[memory]") {
    auto mem = two_regions();
    std::array<uint8_t, 16> buf{};
    CHECK_THROWS_WITH(mem.write_or_throw(Gpa(0xfff8), buf, "initrd"), Catch::Contains("initrd"));
}

TEST_CASE("overlapping or unaligned regions are refused", "[memory]") {
    CHECK_THROWS_AS(GuestMemory::create({{Gpa(0), 0x2000}, {Gpa(0x1000), 0x1000}}), Error);
    CHECK_THROWS_AS(GuestMemory::create({{Gpa(0x10), 0x1000}}), Error);
    CHECK_THROWS_AS(GuestMemory::create({{Gpa(0), 0}}), Error);
    CHECK_THROWS_AS(GuestMemory::create({}), Error);
}

TEST_CASE("populate_for_write makes exactly the pages a loader will fill resident", "[memory]") {
    auto mem = GuestMemory::create({{Gpa(0), 0x100000}});
    const auto resident = [&](uint64_t page) {
        unsigned char state = 0;
        REQUIRE(::mincore(mem.regions()[0].host + page * 0x1000, 0x1000, &state) == 0);
        return (state & 1) != 0;
    };
    REQUIRE_FALSE(resident(1));
    // 0x1800..0x3800 covers pages 1, 2 and 3.
    CHECK(mem.populate_for_write(Gpa(0x1800), 0x2000));
    CHECK_FALSE(resident(0));
    CHECK(resident(1));
    CHECK(resident(2));
    CHECK(resident(3));
    CHECK_FALSE(resident(4));
    CHECK_FALSE(mem.populate_for_write(Gpa(0xff000), 0x2000));  // past the region
    CHECK_FALSE(mem.populate_for_write(Gpa(0x1000), 0));
}
