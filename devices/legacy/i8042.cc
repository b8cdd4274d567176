#include "legacy/i8042.h"

#include <array>
#include <utility>

namespace keel {

namespace {

// No UAPI header carries the i8042 interface; names follow Linux's
// include/linux/i8042.h, values the IBM PS/2 Technical Reference.

// Status register (read at port 0x64).
constexpr uint8_t kStatusOutputFull = 0x01;      // OBF: a byte waits at port 0x60
constexpr uint8_t kStatusSystemFlag = 0x04;      // mirrors command-byte bit 2 (POST passed)
constexpr uint8_t kStatusLastWasCommand = 0x08;  // A2: the last write went to port 0x64
constexpr uint8_t kStatusNotInhibited = 0x10;    // keylock off; Linux warns "Keylock active" otherwise
// IBF (0x02) is never set: keel consumes every write at once. AUXDATA (0x20)
// is never set: there is no AUX port.

// Command byte ("CTR" in Linux).
constexpr uint8_t kCtrKeyboardInterrupt = 0x01;
constexpr uint8_t kCtrSystemFlag = 0x04;
constexpr uint8_t kCtrKeyboardDisabled = 0x10;
constexpr uint8_t kCtrAuxDisabled = 0x20;
constexpr uint8_t kCtrTranslate = 0x40;
// Keyboard interrupt on, POST passed, AUX off, no translation: the keyboard's
// scancode set 2 reaches the guest unchanged (as with Firecracker's i8042).
constexpr uint8_t kInitialCommandByte = kCtrKeyboardInterrupt | kCtrSystemFlag | kCtrAuxDisabled;

// Output port (commands 0xD0/0xD1): bit 0 is the CPU reset line (active low),
// bit 1 the A20 gate.
constexpr uint8_t kOutputPortResetInactive = 0x01;
constexpr uint8_t kOutputPortA20 = 0x02;

// Controller commands (written to port 0x64).
constexpr uint8_t kCmdReadCommandByte = 0x20;
constexpr uint8_t kCmdWriteCommandByte = 0x60;
constexpr uint8_t kCmdDisableAux = 0xa7;
constexpr uint8_t kCmdEnableAux = 0xa8;
constexpr uint8_t kCmdTestAux = 0xa9;
constexpr uint8_t kCmdSelfTest = 0xaa;
constexpr uint8_t kCmdTestKeyboard = 0xab;
constexpr uint8_t kCmdDisableKeyboard = 0xad;
constexpr uint8_t kCmdEnableKeyboard = 0xae;
constexpr uint8_t kCmdReadOutputPort = 0xd0;
constexpr uint8_t kCmdWriteOutputPort = 0xd1;
constexpr uint8_t kCmdWriteKeyboardBuffer = 0xd2;
// 0xF0-0xFF pulse the output-port bits whose command bit is 0 for ~6 us;
// bit 0 is the reset line, so 0xFE resets the CPU.
constexpr uint8_t kCmdPulseOutputPortMask = 0xf0;

constexpr uint8_t kSelfTestPassed = 0x55;
constexpr uint8_t kInterfaceTestPassed = 0x00;
// Answer to the AUX interface test: "clock line stuck low". Linux's
// i8042_check_aux() then concludes at once that there is no AUX port.
constexpr uint8_t kAuxInterfaceAbsent = 0x01;

// Keyboard commands (written to port 0x60) and replies.
constexpr uint8_t kKbdSetLeds = 0xed;
constexpr uint8_t kKbdEcho = 0xee;
constexpr uint8_t kKbdScancodeSet = 0xf0;
constexpr uint8_t kKbdGetId = 0xf2;
constexpr uint8_t kKbdSetTypematic = 0xf3;
constexpr uint8_t kKbdEnable = 0xf4;
constexpr uint8_t kKbdDisable = 0xf5;
constexpr uint8_t kKbdSetDefaults = 0xf6;
constexpr uint8_t kKbdFirstModeCommand = 0xf7;  // 0xF7-0xFE: typematic modes and resend: just ACK
constexpr uint8_t kKbdReset = 0xff;
constexpr uint8_t kKbdAck = 0xfa;
constexpr uint8_t kKbdResend = 0xfe;     // reply to a byte that is not a command
constexpr uint8_t kKbdSelfTestOk = 0xaa;  // BAT completion code
constexpr std::array<uint8_t, 2> kKbdIdMf2{0xab, 0x83};
constexpr uint8_t kKbdCurrentSet = 0x02;

// Ctrl, Alt and Delete pressed, then released in reverse order.
constexpr std::array<uint8_t, 11> kCtrlAltDelSet2{0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14};
constexpr std::array<uint8_t, 8> kCtrlAltDelSet1{0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};

}  // namespace

I8042::I8042(std::shared_ptr<InterruptLine> keyboard_irq, VmLifecycle& lifecycle)
    : m_irq(std::move(keyboard_irq)),
      m_lifecycle(lifecycle),
      m_command_byte(kInitialCommandByte),
      m_output_port(kOutputPortResetInactive | kOutputPortA20) {}

// Runs op under the lock, then fires what it caused. IRQ 1 follows OBF while
// the command byte enables it: an edge whenever a new byte reaches the output
// register (Linux's i8042_interrupt() reads one byte per interrupt).
template <typename Op>
void I8042::access(Op&& op) {
    Effects fx;
    {
        std::lock_guard lock(m_mutex);
        const bool was_high = irq_line_high();
        const uint64_t new_bytes_before = m_new_byte_count;
        op(fx);
        fx.raise_irq = irq_line_high() && (!was_high || m_new_byte_count != new_bytes_before);
    }
    apply(fx);
}

uint8_t I8042::read_port(I8042Port port) {
    uint8_t value = 0;
    access([&](Effects&) { value = port == I8042Port::Data ? read_data() : read_status(); });
    return value;
}

void I8042::write_port(I8042Port port, uint8_t value) {
    access([&](Effects& fx) {
        if (port == I8042Port::Data) {
            write_data(value, fx);
        } else {
            write_command(value, fx);
        }
    });
}

bool I8042::trigger_ctrl_alt_del() {
    bool queued = false;
    access([&](Effects&) {
        if ((m_command_byte & kCtrKeyboardDisabled) || !m_keyboard_scanning) return;
        const bool set1 = (m_command_byte & kCtrTranslate) != 0;
        const std::span<const uint8_t> keys = set1 ? std::span<const uint8_t>(kCtrlAltDelSet1)
                                                   : std::span<const uint8_t>(kCtrlAltDelSet2);
        if (m_output.space() < keys.size()) return;  // never half a key sequence
        for (const uint8_t key : keys) keyboard_reply(key);
        queued = true;
    });
    return queued;
}

uint8_t I8042::read_status() const {
    uint8_t status = kStatusNotInhibited;
    if (!m_output.empty()) status |= kStatusOutputFull;
    if (m_command_byte & kCtrSystemFlag) status |= kStatusSystemFlag;
    if (m_last_write_was_command) status |= kStatusLastWasCommand;
    return status;
}

uint8_t I8042::read_data() {
    const auto byte = m_output.pop();
    if (byte && !m_output.empty()) ++m_new_byte_count;
    return byte.value_or(0);
}

void I8042::write_command(uint8_t command, Effects& fx) {
    m_last_write_was_command = true;
    m_data_target = DataTarget::Keyboard;  // a new command abandons a pending parameter
    if ((command & kCmdPulseOutputPortMask) == kCmdPulseOutputPortMask) {
        if ((command & kOutputPortResetInactive) == 0) request_reset(fx);
        return;
    }
    switch (command) {
        case kCmdReadCommandByte: controller_reply(m_command_byte); break;
        case kCmdWriteCommandByte: m_data_target = DataTarget::CommandByte; break;
        case kCmdDisableAux: m_command_byte |= kCtrAuxDisabled; break;
        case kCmdEnableAux: m_command_byte &= static_cast<uint8_t>(~kCtrAuxDisabled); break;
        case kCmdTestAux: controller_reply(kAuxInterfaceAbsent); break;
        case kCmdSelfTest: controller_reply(kSelfTestPassed); break;
        case kCmdTestKeyboard: controller_reply(kInterfaceTestPassed); break;
        case kCmdDisableKeyboard: m_command_byte |= kCtrKeyboardDisabled; break;
        case kCmdEnableKeyboard: m_command_byte &= static_cast<uint8_t>(~kCtrKeyboardDisabled); break;
        case kCmdReadOutputPort: controller_reply(m_output_port); break;
        case kCmdWriteOutputPort: m_data_target = DataTarget::OutputPort; break;
        case kCmdWriteKeyboardBuffer: m_data_target = DataTarget::KeyboardOutputBuffer; break;
        // Everything else — 0xD3/0xD4 (AUX loopback / AUX write), password and
        // vendor commands — is unknown to an AT-style controller and ignored.
        // Linux's AUX probe then fails at once: its 0xD3 parameter reaches the
        // keyboard, which answers "resend" without the AUXDATA status bit.
        default: break;
    }
}

void I8042::write_data(uint8_t value, Effects& fx) {
    m_last_write_was_command = false;
    const DataTarget target = std::exchange(m_data_target, DataTarget::Keyboard);
    switch (target) {
        case DataTarget::CommandByte: m_command_byte = value; break;
        case DataTarget::OutputPort:
            m_output_port = value;
            if ((value & kOutputPortResetInactive) == 0) request_reset(fx);
            break;
        case DataTarget::KeyboardOutputBuffer: keyboard_reply(value); break;
        case DataTarget::Keyboard: keyboard_receive(value); break;
    }
}

// The keyboard's side of the link: Linux's atkbd probes with GETID, sets LEDs
// and typematic rate, and enables scanning; each byte gets an ACK.
void I8042::keyboard_receive(uint8_t byte) {
    if (const uint8_t command = std::exchange(m_keyboard_command_awaiting_parameter, 0); command != 0) {
        keyboard_reply(kKbdAck);
        if (command == kKbdScancodeSet && byte == 0) keyboard_reply(kKbdCurrentSet);  // 0 = "which set?"
        return;
    }
    switch (byte) {
        case kKbdSetLeds:
        case kKbdScancodeSet:
        case kKbdSetTypematic:
            keyboard_reply(kKbdAck);
            m_keyboard_command_awaiting_parameter = byte;
            break;
        case kKbdEcho: keyboard_reply(kKbdEcho); break;
        case kKbdGetId:
            keyboard_reply(kKbdAck);
            for (const uint8_t id : kKbdIdMf2) keyboard_reply(id);
            break;
        case kKbdEnable:
        case kKbdSetDefaults:
            m_keyboard_scanning = true;
            keyboard_reply(kKbdAck);
            break;
        case kKbdDisable:
            m_keyboard_scanning = false;
            keyboard_reply(kKbdAck);
            break;
        case kKbdReset:
            m_keyboard_scanning = true;
            keyboard_reply(kKbdAck);
            keyboard_reply(kKbdSelfTestOk);
            break;
        default: keyboard_reply(byte >= kKbdFirstModeCommand ? kKbdAck : kKbdResend); break;
    }
}

// A controller reply replaces whatever keyboard bytes were still queued, so
// the guest's polling read gets the reply and nothing stale.
void I8042::controller_reply(uint8_t byte) {
    m_output.clear();
    m_output.push(byte);
    ++m_new_byte_count;
}

// Keyboard bytes queue behind each other; a full buffer drops the byte (the
// guest is not reading: a real keyboard would stop sending too).
void I8042::keyboard_reply(uint8_t byte) {
    const bool was_empty = m_output.empty();
    if (m_output.push(byte) && was_empty) ++m_new_byte_count;
}

void I8042::request_reset(Effects& fx) {
    // Linux pulses the line ten times in a row; the VM hears it once.
    if (m_reset_requested) return;
    m_reset_requested = true;
    fx.reset = true;
}

bool I8042::irq_line_high() const {
    return (m_command_byte & kCtrKeyboardInterrupt) && !m_output.empty();
}

void I8042::apply(const Effects& fx) {
    if (fx.raise_irq && m_irq) m_irq->trigger();
    if (fx.reset) m_lifecycle.request_exit(VmExitRequest::Reboot);
}

I8042PortDevice::I8042PortDevice(std::shared_ptr<I8042> controller, I8042Port port)
    : m_controller(std::move(controller)), m_port(port) {}

// Both ports are one byte wide; the bus only routes accesses that fit
// (offset 0, one byte), anything wider reads the register into byte 0.
void I8042PortDevice::read(uint64_t offset, std::span<uint8_t> data) {
    if (data.empty()) return;
    for (auto& b : data) b = 0;
    if (offset == 0) data[0] = m_controller->read_port(m_port);
}

void I8042PortDevice::write(uint64_t offset, std::span<const uint8_t> data) {
    if (offset == 0 && !data.empty()) m_controller->write_port(m_port, data[0]);
}

}  // namespace keel
