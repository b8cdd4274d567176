// libFuzzer target: the fuzz bytes are a program of guest accesses to the
// i8042's two ports (directly and through the port devices, at any offset
// and width) and of host Ctrl-Alt-Del injections. The fuzzer keeps its own
// model of the controller's command byte and pending-parameter state, so it
// checks behaviour, not just survival:
//   - the output buffer never holds more than kOutputBufferSize bytes (a
//     drain empties it within that many reads) and IBF/AUXDATA never show;
//   - a controller command's reply is what the data port returns next
//     (self test 0x55, interface tests, the command byte as modelled);
//   - IRQ 1 fires at most once per access, only while the modelled command
//     byte enables it and a byte waits in the output buffer;
//   - the reset line reaches the VM exactly once, as a reboot, and only
//     after a pulse command or output-port write that drives it low.
//
// Each step starts with an opcode byte:
//   bits 1:0  0 = read port, 1 = write the next byte to a port,
//             2 = Ctrl-Alt-Del, 3 = drain the output buffer
//   bit  2    port: 0 = data (0x60), 1 = command (0x64)
//   bit  3    through an I8042PortDevice (bits 6:4 offset and width)

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "fuzz_input.h"
#include "legacy/i8042.h"

namespace {

using keel::I8042;
using keel::I8042Port;
using keel::fuzz::check;

class CountingIrq final : public keel::InterruptLine {
public:
    void trigger() override { ++count; }
    uint64_t count = 0;
};

class Lifecycle final : public keel::VmLifecycle {
public:
    void request_exit(keel::VmExitRequest request) override {
        ++exits;
        check(request == keel::VmExitRequest::Reboot);
    }
    int exits = 0;
};

constexpr uint8_t kStatusOutputFull = 0x01;
constexpr uint8_t kStatusInputFull = 0x02;
constexpr uint8_t kStatusNotInhibited = 0x10;
constexpr uint8_t kStatusAuxData = 0x20;
constexpr uint8_t kCtrKeyboardInterrupt = 0x01;

// What the fuzzer knows of the controller without looking inside.
struct Model {
    uint8_t command_byte = 0x25;  // interrupt on, POST passed, AUX disabled
    enum class Next : uint8_t { Keyboard, CommandByte, OutputPort, KeyboardBuffer } next = Next::Keyboard;
    bool reset_line_pulled = false;

    // Returns the reply the controller must put first in its output buffer, or -1.
    int command(uint8_t c) {
        next = Next::Keyboard;
        if ((c & 0xf0) == 0xf0) {
            if ((c & 1) == 0) reset_line_pulled = true;
            return -1;
        }
        switch (c) {
            case 0x20:
                return command_byte;
            case 0x60:
                next = Next::CommandByte;
                return -1;
            case 0xa7:
                command_byte |= 0x20;
                return -1;
            case 0xa8:
                command_byte &= 0xdf;
                return -1;
            case 0xa9:
                return 0x01;
            case 0xaa:
                return 0x55;
            case 0xab:
                return 0x00;
            case 0xad:
                command_byte |= 0x10;
                return -1;
            case 0xae:
                command_byte &= 0xef;
                return -1;
            case 0xd1:
                next = Next::OutputPort;
                return -1;
            case 0xd2:
                next = Next::KeyboardBuffer;
                return -1;
            default:
                return -1;
        }
    }
    void data(uint8_t value) {
        const Next target = next;
        next = Next::Keyboard;
        if (target == Next::CommandByte) command_byte = value;
        if (target == Next::OutputPort && (value & 1) == 0) reset_line_pulled = true;
    }
};

uint8_t status(I8042& controller) {
    const uint8_t s = controller.read_port(I8042Port::Command);
    check((s & (kStatusInputFull | kStatusAuxData)) == 0);
    check((s & kStatusNotInhibited) != 0);
    return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    keel::fuzz::FuzzInput in(std::span(data, size));
    auto irq = std::make_shared<CountingIrq>();
    Lifecycle lifecycle;
    auto controller = std::make_shared<I8042>(irq, lifecycle);
    keel::I8042PortDevice data_port(controller, I8042Port::Data);
    keel::I8042PortDevice command_port(controller, I8042Port::Command);
    Model model;

    for (int steps = 0; !in.empty() && steps < 4096; ++steps) {
        const uint8_t op = in.u8();
        const I8042Port port = (op & 4) != 0 ? I8042Port::Command : I8042Port::Data;
        const bool via_device = (op & 8) != 0;
        const uint64_t irqs_before = irq->count;
        switch (op & 3) {
            case 0: {
                if (via_device) {
                    // The bus only routes (0, 1); the device must tolerate anything.
                    const uint64_t offset = (op >> 4) & 1;
                    const size_t width = size_t{1} << ((op >> 5) & 3);
                    std::array<uint8_t, 8> buf{};
                    buf.fill(0xcc);
                    (port == I8042Port::Data ? data_port : command_port).read(offset, std::span(buf.data(), width));
                    for (size_t i = offset == 0 ? 1 : 0; i < width; ++i) check(buf[i] == 0);
                } else if (port == I8042Port::Data) {
                    (void)controller->read_port(port);
                } else {
                    (void)status(*controller);
                }
                break;
            }
            case 1: {
                const uint8_t value = in.u8();
                const uint64_t offset = via_device ? (op >> 4) & 1 : 0;
                keel::I8042PortDevice& device = port == I8042Port::Data ? data_port : command_port;
                if (offset != 0) {
                    // Not the register (the bus never routes this): nothing may happen.
                    device.write(offset, std::span(&value, 1));
                    break;
                }
                int reply = -1;
                if (port == I8042Port::Command) {
                    reply = model.command(value);
                } else {
                    model.data(value);
                }
                if (via_device) {
                    device.write(0, std::span(&value, 1));
                } else {
                    controller->write_port(port, value);
                }
                if (reply >= 0) {
                    check((status(*controller) & kStatusOutputFull) != 0);
                    check(controller->read_port(I8042Port::Data) == reply);
                }
                break;
            }
            case 2: {
                const bool queued = controller->trigger_ctrl_alt_del();
                if (queued) check((status(*controller) & kStatusOutputFull) != 0);
                break;
            }
            default: {
                size_t reads = 0;
                while ((status(*controller) & kStatusOutputFull) != 0) {
                    check(++reads <= I8042::kOutputBufferSize);
                    const uint64_t before_read = irq->count;
                    (void)controller->read_port(I8042Port::Data);
                    check(irq->count - before_read <= 1);
                    if (irq->count != before_read) check((model.command_byte & kCtrKeyboardInterrupt) != 0);
                }
                continue;  // one IRQ per access, checked above
            }
        }
        check(irq->count - irqs_before <= 1);
        if (irq->count != irqs_before) check((model.command_byte & kCtrKeyboardInterrupt) != 0);
        check(lifecycle.exits == (model.reset_line_pulled ? 1 : 0));
    }
    check(lifecycle.exits == (model.reset_line_pulled ? 1 : 0));
    return 0;
}
