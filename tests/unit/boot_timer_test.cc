#include <catch2/catch.hpp>

#include <array>
#include <string>
#include <vector>

#include "arch/x86_64/layout.h"
#include "legacy/boot_timer.h"

using namespace keel;

namespace {

// A clock that advances 1000 ns per reading, and a sink that keeps marks.
struct MarkLog {
    BootMarkSink sink() {
        return [this](const BootMark& m) { marks.push_back(m); };
    }
    BootClock clock() {
        return [this] { return now += 1000; };
    }
    std::vector<BootMark> marks;
    uint64_t now = 0;
};

void write_bytes(BusDevice& dev, uint64_t offset, std::vector<uint8_t> bytes) {
    dev.write(offset, bytes);
}

}  // namespace

TEST_CASE("boot timer MMIO: a byte 123 at offset 0 records a mark", "[boot_timer][legacy]") {
    MarkLog log;
    BootTimerMmio timer(log.sink(), log.clock());
    write_bytes(timer, 0, {x86::kBootTimerMagic});
    REQUIRE(log.marks.size() == 1);
    CHECK(log.marks[0].source == BootMarkSource::Mmio);
    CHECK(log.marks[0].code == x86::kBootTimerMagic);
    CHECK(log.marks[0].at_ns == 1000);
    CHECK(std::string(boot_mark_source_name(log.marks[0].source)) == "mmio");
}

TEST_CASE("boot timer MMIO ignores other values, offsets and widths", "[boot_timer][legacy]") {
    MarkLog log;
    BootTimerMmio timer(log.sink(), log.clock());
    write_bytes(timer, 0, {122});
    write_bytes(timer, 0, {0});
    write_bytes(timer, 1, {x86::kBootTimerMagic});
    write_bytes(timer, 0, {x86::kBootTimerMagic, 0});
    write_bytes(timer, 0, {x86::kBootTimerMagic, 0, 0, 0});
    CHECK(log.marks.empty());
    std::array<uint8_t, 4> out{1, 2, 3, 4};
    timer.read(0, out);
    CHECK(out == std::array<uint8_t, 4>{0, 0, 0, 0});
}

TEST_CASE("port 0x80 records every code with its time", "[boot_timer][legacy]") {
    MarkLog log;
    PostCodePort port(log.sink(), log.clock());
    for (const uint8_t code : std::array<uint8_t, 4>{0x40, 0x41, 0x00, 0xff}) write_bytes(port, 0, {code});
    REQUIRE(log.marks.size() == 4);
    CHECK(log.marks[1].code == 0x41);
    CHECK(log.marks[3].code == 0xff);
    CHECK(log.marks[0].at_ns < log.marks[3].at_ns);
    CHECK(log.marks[0].source == BootMarkSource::PostCode);
    CHECK(std::string(boot_mark_source_name(BootMarkSource::PostCode)) == "port80");
    std::array<uint8_t, 1> in{0xff};
    port.read(0, in);
    CHECK(in[0] == 0);
}

TEST_CASE("boot marks are bounded per source and the excess is counted", "[boot_timer][legacy]") {
    MarkLog log;
    PostCodePort port(log.sink(), log.clock());
    BootTimerMmio timer(log.sink(), log.clock());
    // Linux's io_delay writes port 0x80 on every outb_p: lots of noise.
    for (int i = 0; i < 1000; ++i) write_bytes(port, 0, {static_cast<uint8_t>(i)});
    CHECK(log.marks.size() == PostCodePort::kMaxMarks);
    CHECK(port.marks().recorded() == PostCodePort::kMaxMarks);
    CHECK(port.marks().dropped() == 1000 - PostCodePort::kMaxMarks);
    // The noise does not use up the MMIO mark's budget.
    write_bytes(timer, 0, {x86::kBootTimerMagic});
    CHECK(log.marks.back().source == BootMarkSource::Mmio);
    for (size_t i = 0; i < 2 * BootTimerMmio::kMaxMarks; ++i) write_bytes(timer, 0, {x86::kBootTimerMagic});
    CHECK(timer.marks().recorded() == BootTimerMmio::kMaxMarks);
    CHECK(log.marks.size() == PostCodePort::kMaxMarks + BootTimerMmio::kMaxMarks);
}

TEST_CASE("boot marks use CLOCK_MONOTONIC by default", "[boot_timer][legacy]") {
    std::vector<BootMark> marks;
    PostCodePort port([&](const BootMark& m) { marks.push_back(m); });
    const uint64_t before = boot_clock_monotonic_ns();
    write_bytes(port, 0, {0x42});
    const uint64_t after = boot_clock_monotonic_ns();
    REQUIRE(marks.size() == 1);
    CHECK(marks[0].at_ns >= before);
    CHECK(marks[0].at_ns <= after);
}
