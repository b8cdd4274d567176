#include <catch2/catch.hpp>

#include <array>
#include <memory>
#include <optional>
#include <vector>

#include "device_fakes.h"
#include "bus/bus.h"
#include "legacy/i8042.h"

using namespace keel;
using keel::test::CountingIrq;
using keel::test::RecordingLifecycle;

namespace {

constexpr uint8_t kStatusObf = 0x01;
constexpr uint8_t kStatusIbf = 0x02;
constexpr uint8_t kStatusAuxData = 0x20;
constexpr uint8_t kCtrKbdInt = 0x01;
constexpr uint8_t kCtrKbdDis = 0x10;
constexpr uint8_t kCtrXlate = 0x40;

class I8042Fixture {
public:
    I8042Fixture() : controller(std::make_shared<I8042>(irq, lifecycle)) {}

    uint8_t status() { return controller->read_port(I8042Port::Command); }
    uint8_t data() { return controller->read_port(I8042Port::Data); }
    void command(uint8_t c) { controller->write_port(I8042Port::Command, c); }
    void write_data(uint8_t d) { controller->write_port(I8042Port::Data, d); }

    // Linux's __i8042_command(): the reply if one arrives, else nullopt
    // (where Linux would spin for 500 ms and time out).
    std::optional<uint8_t> command_with_reply(uint8_t c) {
        command(c);
        if (!(status() & kStatusObf)) return std::nullopt;
        return data();
    }
    std::vector<uint8_t> drain() {
        std::vector<uint8_t> bytes;
        while (status() & kStatusObf) bytes.push_back(data());
        return bytes;
    }

    std::shared_ptr<CountingIrq> irq = std::make_shared<CountingIrq>();
    RecordingLifecycle lifecycle;
    std::shared_ptr<I8042> controller;
};

}  // namespace

TEST_CASE("i8042 self-test answers 0x55 and the output buffer then empties", "[i8042][legacy]") {
    I8042Fixture kbc;
    CHECK((kbc.status() & (kStatusObf | kStatusIbf)) == 0);
    CHECK(kbc.command_with_reply(0xaa) == uint8_t{0x55});
    CHECK((kbc.status() & kStatusObf) == 0);
    CHECK(kbc.command_with_reply(0xab) == uint8_t{0x00});  // keyboard interface test
}

TEST_CASE("i8042 command byte round-trips through 0x20/0x60", "[i8042][legacy]") {
    I8042Fixture kbc;
    const auto initial = kbc.command_with_reply(0x20);
    REQUIRE(initial.has_value());
    CHECK((*initial & kCtrKbdInt) != 0);
    CHECK((*initial & kCtrXlate) == 0);  // untranslated: set 2 reaches the guest
    kbc.command(0x60);
    kbc.write_data(0x47);
    CHECK(kbc.command_with_reply(0x20) == uint8_t{0x47});
    kbc.command(0xad);
    CHECK(kbc.command_with_reply(0x20) == uint8_t{0x47 | kCtrKbdDis});
    kbc.command(0xae);
    kbc.command(0xa7);
    CHECK(kbc.command_with_reply(0x20) == uint8_t{0x47 | 0x20});
    kbc.command(0xa8);
    CHECK(kbc.command_with_reply(0x20) == uint8_t{0x47});
}

TEST_CASE("i8042 reset pulse requests one reboot however often it is sent", "[i8042][legacy]") {
    I8042Fixture kbc;
    // Linux's native_machine_emergency_restart() writes 0xFE ten times.
    for (int i = 0; i < 10; ++i) kbc.command(0xfe);
    REQUIRE(kbc.lifecycle.requests.size() == 1);
    CHECK(kbc.lifecycle.requests[0] == VmExitRequest::Reboot);
}

TEST_CASE("i8042 output-port write with the reset bit low reboots, pulses of other bits do not", "[i8042][legacy]") {
    I8042Fixture kbc;
    kbc.command(0xd1);
    kbc.write_data(0xdf);  // A20 on, reset line high: what bootloaders write
    kbc.command(0xff);     // pulse nothing
    kbc.command(0xfd);     // pulse bit 1 (A20) only
    CHECK(kbc.lifecycle.requests.empty());
    CHECK(kbc.command_with_reply(0xd0) == uint8_t{0xdf});
    kbc.command(0xd1);
    kbc.write_data(0xde);
    REQUIRE(kbc.lifecycle.requests.size() == 1);
    CHECK(kbc.lifecycle.requests[0] == VmExitRequest::Reboot);
}

TEST_CASE("unknown i8042 commands are harmless", "[i8042][legacy]") {
    I8042Fixture kbc;
    const auto before = kbc.command_with_reply(0x20);
    for (const uint8_t c : std::array<uint8_t, 8>{0x00, 0x21, 0x7f, 0xa4, 0xc0, 0xd3, 0xd4, 0xe0}) kbc.command(c);
    CHECK((kbc.status() & kStatusObf) == 0);
    CHECK(kbc.lifecycle.requests.empty());
    CHECK(kbc.command_with_reply(0x20) == before);
    CHECK(kbc.command_with_reply(0xaa) == uint8_t{0x55});
}

// Linux 6.1 drivers/input/serio/i8042.c: controller_init(), check_aux(),
// setup_kbd(); then atkbd_probe() and atkbd_activate() over the KBD port.
TEST_CASE("Linux's i8042 probe finds a keyboard, no AUX port, and never waits", "[i8042][legacy]") {
    I8042Fixture kbc;
    CHECK(kbc.drain().empty());  // i8042_controller_check()

    auto ctr = kbc.command_with_reply(0x20);
    REQUIRE(ctr.has_value());
    CHECK(kbc.command_with_reply(0x20) == ctr);  // stable CTR read
    CHECK((kbc.status() & 0x10) != 0);           // no "Keylock active"
    uint8_t linux_ctr = static_cast<uint8_t>((*ctr | kCtrKbdDis) & ~kCtrKbdInt);
    kbc.command(0x60);
    kbc.write_data(linux_ctr);

    // i8042_check_aux(): AUX loopback answers without AUXDATA ("auxerr") ...
    CHECK(kbc.drain().empty());
    kbc.command(0xd3);
    kbc.write_data(0x5a);
    REQUIRE((kbc.status() & kStatusObf) != 0);
    CHECK((kbc.status() & kStatusAuxData) == 0);
    // ... so Linux runs the AUX interface test, whose error code ends the probe.
    const auto aux_test = kbc.command_with_reply(0xa9);
    REQUIRE(aux_test.has_value());
    CHECK(*aux_test != 0x00);
    CHECK(*aux_test != 0xfa);
    CHECK(*aux_test != 0xff);

    // i8042_enable_kbd_port(): interrupts on from here.
    linux_ctr = static_cast<uint8_t>((linux_ctr & ~kCtrKbdDis) | kCtrKbdInt);
    kbc.command(0x60);
    kbc.write_data(linux_ctr);
    CHECK(kbc.drain().empty());
    const int irqs_before = kbc.irq->count;

    // atkbd: GETID answers ACK + MF2 id, one interrupt per byte.
    kbc.write_data(0xf2);
    CHECK(kbc.irq->count == irqs_before + 1);
    CHECK(kbc.drain() == std::vector<uint8_t>{0xfa, 0xab, 0x83});
    CHECK(kbc.irq->count == irqs_before + 3);
    // Deactivate, set typematic rate, set LEDs, enable: every byte ACKed.
    for (const uint8_t b : std::array<uint8_t, 6>{0xf5, 0xf3, 0x00, 0xed, 0x00, 0xf4}) {
        kbc.write_data(b);
        CHECK(kbc.drain() == std::vector<uint8_t>{0xfa});
    }
    kbc.write_data(0xf0);
    kbc.write_data(0x00);
    CHECK(kbc.drain() == std::vector<uint8_t>{0xfa, 0xfa, 0x02});  // scancode set 2
    kbc.write_data(0xee);
    CHECK(kbc.drain() == std::vector<uint8_t>{0xee});
    kbc.write_data(0xff);
    CHECK(kbc.drain() == std::vector<uint8_t>{0xfa, 0xaa});
    CHECK(kbc.lifecycle.requests.empty());
}

TEST_CASE("Ctrl-Alt-Del queues set-2 presses and releases with an interrupt per byte", "[i8042][legacy]") {
    I8042Fixture kbc;
    REQUIRE(kbc.controller->trigger_ctrl_alt_del());
    CHECK(kbc.irq->count == 1);
    CHECK_FALSE(kbc.controller->trigger_ctrl_alt_del());  // no room for a second, unread sequence
    const std::vector<uint8_t> expected{0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14};
    CHECK(kbc.drain() == expected);
    CHECK(kbc.irq->count == static_cast<int>(expected.size()));
    CHECK(kbc.controller->trigger_ctrl_alt_del());  // room again
}

TEST_CASE("Ctrl-Alt-Del follows translation and the keyboard's enable state", "[i8042][legacy]") {
    I8042Fixture kbc;
    const auto ctr = kbc.command_with_reply(0x20).value();
    kbc.command(0x60);
    kbc.write_data(ctr | kCtrXlate);
    REQUIRE(kbc.controller->trigger_ctrl_alt_del());
    CHECK(kbc.drain() == std::vector<uint8_t>{0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d});

    kbc.command(0xad);  // keyboard interface disabled
    CHECK_FALSE(kbc.controller->trigger_ctrl_alt_del());
    kbc.command(0xae);
    kbc.write_data(0xf5);  // keyboard told to stop scanning
    CHECK(kbc.drain() == std::vector<uint8_t>{0xfa});
    CHECK_FALSE(kbc.controller->trigger_ctrl_alt_del());
    kbc.write_data(0xf4);
    CHECK(kbc.drain() == std::vector<uint8_t>{0xfa});
    CHECK(kbc.controller->trigger_ctrl_alt_del());
}

TEST_CASE("i8042 keeps IRQ 1 quiet while the command byte disables it", "[i8042][legacy]") {
    I8042Fixture kbc;
    const auto ctr = kbc.command_with_reply(0x20).value();
    const int after_reply = kbc.irq->count;
    kbc.command(0x60);
    kbc.write_data(static_cast<uint8_t>(ctr & ~kCtrKbdInt));
    kbc.write_data(0xf2);
    CHECK(kbc.irq->count == after_reply);
    // Enabling the interrupt with bytes waiting raises the line at once.
    kbc.command(0x60);
    kbc.write_data(ctr);  // the command byte write does not flush the keyboard bytes
    CHECK(kbc.irq->count == after_reply + 1);
}

TEST_CASE("i8042 sits on two separate one-byte ports", "[i8042][legacy]") {
    I8042Fixture kbc;
    Bus pio(BusKind::Pio);
    pio.insert(std::make_shared<I8042PortDevice>(kbc.controller, I8042Port::Data), 0x60, 1, "i8042-data");
    pio.insert(std::make_shared<I8042PortDevice>(kbc.controller, I8042Port::Command), 0x64, 1, "i8042-command");
    const std::array<uint8_t, 1> self_test{0xaa};
    CHECK(pio.write(0x64, self_test));
    std::array<uint8_t, 1> b{};
    CHECK(pio.read(0x64, b));
    CHECK((b[0] & kStatusObf) != 0);
    CHECK(pio.read(0x60, b));
    CHECK(b[0] == 0x55);
    CHECK_FALSE(pio.read(0x61, b));  // 0x61 (speaker/NMI) is not ours
}
