#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>

#include "bus/bus_device.h"
#include "legacy/byte_fifo.h"
#include "legacy/serial_registers.h"

namespace keel {

// Where transmitted bytes go (keel: stdout). Called on a vCPU thread, never
// under the device lock, once per byte written to THR; it may buffer.
using SerialOutput = std::function<void(std::span<const uint8_t>)>;

struct SerialStats {
    uint64_t bytes_out = 0;  // written by the guest to THR (not counting loopback)
    uint64_t bytes_in = 0;   // accepted from the host by enqueue_input
    uint64_t overruns = 0;   // loopback bytes dropped on a full receive FIFO (LSR.OE)
};

// A 16550A UART (COM1 in keel: insert it at kSerialCom1Port for
// uart::kPortCount ports). Transmission is instantaneous: THR is always empty
// again by the time the guest looks.
//
// Threads: vCPU threads call read()/write(), the event loop calls
// enqueue_input(); one mutex guards the registers. The output sink, the
// interrupt line and the room callback run after the lock is released.
//
// Interrupts model the 16550's INTR pin (datasheet §8.6, IIR): the pin is high
// while an enabled condition is pending, and the InterruptLine is triggered on
// each rising edge — as an ISA edge-triggered IRQ sees it. The guest's handler
// reads IIR until it reports "no interrupt", which lowers the pin again.
class Serial final : public BusDevice {
public:
    // Bytes of host input the device holds for the guest: a software FIFO
    // larger than the 16550A's 16 so the event loop wakes less often.
    static constexpr size_t kRxFifoCapacity = 64;
    // The hardware FIFO depth, which loopback mode honours so that Linux's
    // size_fifo() measures a plain 16550A.
    static constexpr size_t kHardwareFifoDepth = 16;

    Serial(std::shared_ptr<InterruptLine> irq, SerialOutput output);

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // Host input (the event loop): appends as many bytes as fit and returns
    // how many it took. When it takes fewer than offered, the caller keeps the
    // rest, stops reading its input, and waits for the room callback.
    [[nodiscard]] size_t enqueue_input(std::span<const uint8_t> bytes);
    [[nodiscard]] size_t rx_space() const;

    // Called once (on a vCPU thread) after an enqueue_input() fell short, as
    // soon as the guest has drained the FIFO to half full or less. Set before
    // the guest runs.
    void set_rx_room_callback(std::function<void()> callback);

    [[nodiscard]] SerialStats stats() const;

private:
    // What an access causes outside the lock.
    struct Effects {
        std::optional<uint8_t> output;
        bool raise_irq = false;
        bool rx_room = false;
    };

    [[nodiscard]] uint8_t read_register(uint8_t offset);
    void write_register(uint8_t offset, uint8_t value, Effects& fx);
    [[nodiscard]] uint8_t read_iir();
    [[nodiscard]] uint8_t read_lsr();
    [[nodiscard]] uint8_t read_msr();
    void write_ier(uint8_t value);
    void write_fcr(uint8_t value);
    void write_mcr(uint8_t value);
    void transmit(uint8_t byte, Effects& fx);
    void receive_loopback(uint8_t byte);

    [[nodiscard]] uint8_t pending_interrupt_id() const;
    [[nodiscard]] bool irq_pin_high() const { return pending_interrupt_id() != UART_IIR_NO_INT; }
    [[nodiscard]] bool loopback() const { return (m_mcr & UART_MCR_LOOP) != 0; }
    [[nodiscard]] bool dlab() const { return (m_lcr & UART_LCR_DLAB) != 0; }
    [[nodiscard]] uint8_t modem_inputs() const;
    [[nodiscard]] bool take_rx_room_notification();
    void apply(const Effects& fx);

    std::shared_ptr<InterruptLine> m_irq;
    SerialOutput m_output;
    std::function<void()> m_rx_room_callback;

    mutable std::mutex m_mutex;
    uint8_t m_ier = uart::spec_of(uart::Register::Ier).reset_value;
    uint8_t m_fcr = uart::spec_of(uart::Register::Fcr).reset_value;
    uint8_t m_lcr = uart::spec_of(uart::Register::Lcr).reset_value;
    uint8_t m_mcr = uart::spec_of(uart::Register::Mcr).reset_value;
    uint8_t m_scr = uart::spec_of(uart::Register::Scr).reset_value;
    uint8_t m_dll = uart::spec_of(uart::Register::Dll).reset_value;
    uint8_t m_dlm = uart::spec_of(uart::Register::Dlm).reset_value;
    uint8_t m_msr_deltas = 0;          // MSR bits 3:0, cleared by reading MSR
    bool m_thr_empty_pending = false;  // the THRE interrupt condition (IIR id 0x2)
    bool m_overrun = false;            // LSR.OE, cleared by reading LSR
    bool m_producer_waiting = false;   // an enqueue_input fell short
    ByteFifo<kRxFifoCapacity> m_rx;

    std::atomic<uint64_t> m_bytes_out{0};
    std::atomic<uint64_t> m_bytes_in{0};
    std::atomic<uint64_t> m_overruns{0};
};

}  // namespace keel
