#include <catch2/catch.hpp>

#include <array>
#include <memory>

#include "bus/bus.h"
#include "common/error.h"

using namespace keel;

namespace {
class RecordingDevice final : public BusDevice {
public:
    void read(uint64_t offset, std::span<uint8_t> data) override {
        last_offset = offset;
        for (auto& b : data) b = 0xab;
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        last_offset = offset;
        last_size = data.size();
    }
    uint64_t last_offset = ~0ull;
    size_t last_size = 0;
};
}  // namespace

TEST_CASE("bus dispatches with device-relative offsets", "[bus]") {
    Bus bus(BusKind::Pio);
    auto dev = std::make_shared<RecordingDevice>();
    bus.insert(dev, 0x3f8, 8, "serial");
    std::array<uint8_t, 1> data{};
    CHECK(bus.read(0x3fd, data));
    CHECK(dev->last_offset == 5);
    CHECK(data[0] == 0xab);
    const std::array<uint8_t, 2> w{1, 2};
    CHECK(bus.write(0x3fe, w));
    CHECK(dev->last_size == 2);
}

TEST_CASE("unclaimed accesses read as zeros and are counted", "[bus]") {
    Bus bus(BusKind::Pio);
    bus.insert(std::make_shared<RecordingDevice>(), 0x3f8, 8, "serial");
    std::array<uint8_t, 2> data{0xff, 0xff};
    CHECK_FALSE(bus.read(0x3ff, data));  // straddles the end of the device
    CHECK(data == std::array<uint8_t, 2>{0, 0});
    CHECK_FALSE(bus.write(0x80, data));
    CHECK(bus.unclaimed_accesses() == 2);
}

TEST_CASE("bus refuses empty, overflowing and overlapping ranges", "[bus]") {
    Bus bus(BusKind::Mmio);
    auto dev = std::make_shared<RecordingDevice>();
    bus.insert(dev, 0x1000, 0x100, "a");
    CHECK_THROWS_AS(bus.insert(dev, 0x2000, 0, "zero"), Error);
    CHECK_THROWS_AS(bus.insert(dev, UINT64_MAX - 1, 4, "wrap"), Error);
    CHECK_THROWS_WITH(bus.insert(dev, 0x10ff, 2, "b"), Catch::Contains("overlaps 'a'"));
    bus.insert(dev, 0x1100, 0x100, "c");  // adjacent is fine
    CHECK(bus.entries().size() == 2);
}
