#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>

#include "bus/bus_device.h"
#include "legacy/byte_fifo.h"

namespace keel {

// The two registers of the i8042 keyboard controller. They sit at ports 0x60
// and 0x64, which are not contiguous (0x61 is the PC speaker/NMI port), so the
// controller is inserted twice, through one I8042PortDevice per port.
enum class I8042Port : uint8_t { Data, Command };

// An AT-style i8042 with a PS/2 keyboard and no AUX (mouse) port — enough for
// Linux's i8042 and atkbd drivers to probe without timeouts, for the reset
// line (command 0xFE: the classic reboot path, `reboot=k`), and for injecting
// Ctrl-Alt-Del. Reference: IBM PS/2 Technical Reference, "Keyboard/Auxiliary
// Device Controller"; Linux drivers/input/serio/i8042.c.
//
// Threads: vCPU threads through the port devices, the API thread through
// trigger_ctrl_alt_del(); one mutex guards the state. The interrupt line and
// the lifecycle are called after the lock is released.
class I8042 final {
public:
    // One less than Linux's I8042_BUFFER_SIZE: i8042_flush() reading that many
    // bytes would conclude there is no controller.
    static constexpr size_t kOutputBufferSize = 15;

    // The VmLifecycle must outlive the controller (the VM owns both).
    I8042(std::shared_ptr<InterruptLine> keyboard_irq, VmLifecycle& lifecycle);

    [[nodiscard]] uint8_t read_port(I8042Port port);
    void write_port(I8042Port port, uint8_t value);

    // Queues the key presses and releases of Ctrl-Alt-Del, in the scancode set
    // the guest reads (set 2, or set 1 while the guest enables translation).
    // Returns false, queueing nothing, while the guest has the keyboard
    // disabled or has not read earlier keys.
    [[nodiscard]] bool trigger_ctrl_alt_del();

private:
    // What the next byte written to the data port means.
    enum class DataTarget : uint8_t { Keyboard, CommandByte, OutputPort, KeyboardOutputBuffer };

    struct Effects {
        bool raise_irq = false;
        bool reset = false;
    };

    [[nodiscard]] uint8_t read_status() const;
    [[nodiscard]] uint8_t read_data();
    void write_command(uint8_t command, Effects& fx);
    void write_data(uint8_t value, Effects& fx);
    void keyboard_receive(uint8_t byte);
    void controller_reply(uint8_t byte);
    void keyboard_reply(uint8_t byte);
    void request_reset(Effects& fx);
    [[nodiscard]] bool irq_line_high() const;
    void apply(const Effects& fx);

    template <typename Op>
    void access(Op&& op);

    std::shared_ptr<InterruptLine> m_irq;
    VmLifecycle& m_lifecycle;

    std::mutex m_mutex;
    ByteFifo<kOutputBufferSize> m_output;
    uint64_t m_new_byte_count = 0;  // bumps whenever a new byte reaches the head of m_output
    uint8_t m_command_byte;
    uint8_t m_output_port;
    DataTarget m_data_target = DataTarget::Keyboard;
    bool m_last_write_was_command = false;
    uint8_t m_keyboard_command_awaiting_parameter = 0;  // 0: none
    bool m_keyboard_scanning = true;
    bool m_reset_requested = false;
};

// A BusDevice for one i8042 port (length 1). Insert two:
//   pio.insert(make_shared<I8042PortDevice>(ctl, I8042Port::Data), kI8042DataPort, 1, "i8042-data");
//   pio.insert(make_shared<I8042PortDevice>(ctl, I8042Port::Command), kI8042CommandPort, 1, "i8042-command");
class I8042PortDevice final : public BusDevice {
public:
    I8042PortDevice(std::shared_ptr<I8042> controller, I8042Port port);
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

private:
    std::shared_ptr<I8042> m_controller;
    I8042Port m_port;
};

}  // namespace keel
