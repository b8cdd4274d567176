#include "legacy/serial.h"

#include <utility>

namespace keel {

namespace {

// IIR bits 7:6 read 11b while the FIFOs are enabled (PC16550D §8.6, Table 4);
// this version of <linux/serial_reg.h> has no name for them.
constexpr uint8_t kIirFifosEnabled = 0xc0;
// IER bits 7:4 read as zero on a 16550A: Linux's autoconfig() writes 0x0F and
// expects 0x0F back, and an XScale probe (IER bit 6) must fail.
constexpr uint8_t kIerMask = UART_IER_MSI | UART_IER_RLSI | UART_IER_THRI | UART_IER_RDI;
// MCR bits 7:5 are reserved (zero) on a 16550A.
constexpr uint8_t kMcrMask = UART_MCR_LOOP | UART_MCR_OUT2 | UART_MCR_OUT1 | UART_MCR_RTS | UART_MCR_DTR;
// FCR bits kept after a write: CLEAR_RCVR/CLEAR_XMIT self-clear, and bit 5
// (the 16750's 64-byte mode) does not exist here, so IIR bit 5 stays zero and
// Linux does not mistake the port for a 16750.
constexpr uint8_t kFcrKept = UART_FCR_ENABLE_FIFO | UART_FCR_DMA_SELECT | UART_FCR_TRIGGER_MASK;

constexpr uint8_t kMsrInputsAsserted = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;

}  // namespace

Serial::Serial(std::shared_ptr<InterruptLine> irq, SerialOutput output)
    : m_irq(std::move(irq)), m_output(std::move(output)) {}

void Serial::read(uint64_t offset, std::span<uint8_t> data) {
    Effects fx;
    {
        std::lock_guard lock(m_mutex);
        // A wide access reaches consecutive byte registers, as on the ISA bus.
        for (size_t i = 0; i < data.size(); ++i) {
            const uint64_t reg = offset + i;
            if (reg >= uart::kPortCount) {
                data[i] = 0;
                continue;
            }
            const bool was_high = irq_pin_high();
            data[i] = read_register(static_cast<uint8_t>(reg));
            fx.raise_irq = fx.raise_irq || (!was_high && irq_pin_high());
        }
        fx.rx_room = take_rx_room_notification();
    }
    apply(fx);
}

void Serial::write(uint64_t offset, std::span<const uint8_t> data) {
    Effects fx;
    {
        std::lock_guard lock(m_mutex);
        for (size_t i = 0; i < data.size(); ++i) {
            const uint64_t reg = offset + i;
            if (reg >= uart::kPortCount) continue;
            const bool was_high = irq_pin_high();
            write_register(static_cast<uint8_t>(reg), data[i], fx);
            fx.raise_irq = fx.raise_irq || (!was_high && irq_pin_high());
        }
        fx.rx_room = take_rx_room_notification();
    }
    apply(fx);
}

uint8_t Serial::read_register(uint8_t offset) {
    switch (uart::kReadDecode[uart::decode_index(offset, dlab())]) {
        case uart::Register::Rbr: return m_rx.pop().value_or(0);
        case uart::Register::Ier: return m_ier;
        case uart::Register::Iir: return read_iir();
        case uart::Register::Lcr: return m_lcr;
        case uart::Register::Mcr: return m_mcr;
        case uart::Register::Lsr: return read_lsr();
        case uart::Register::Msr: return read_msr();
        case uart::Register::Scr: return m_scr;
        case uart::Register::Dll: return m_dll;
        case uart::Register::Dlm: return m_dlm;
        default: return 0;  // no write-only register decodes for a read (serial_registers.h)
    }
}

void Serial::write_register(uint8_t offset, uint8_t value, Effects& fx) {
    switch (uart::kWriteDecode[uart::decode_index(offset, dlab())]) {
        case uart::Register::Thr: transmit(value, fx); break;
        case uart::Register::Ier: write_ier(value); break;
        case uart::Register::Fcr: write_fcr(value); break;
        case uart::Register::Lcr: m_lcr = value; break;
        case uart::Register::Mcr: write_mcr(value); break;
        case uart::Register::Scr: m_scr = value; break;
        case uart::Register::Dll: m_dll = value; break;
        case uart::Register::Dlm: m_dlm = value; break;
        default: break;  // LSR and MSR are read-only: writes are ignored
    }
}

// Highest-priority enabled condition first (PC16550D Table 4): receiver line
// status, received data, THR empty, modem status.
uint8_t Serial::pending_interrupt_id() const {
    if ((m_ier & UART_IER_RLSI) && m_overrun) return UART_IIR_RLSI;
    if ((m_ier & UART_IER_RDI) && !m_rx.empty()) return UART_IIR_RDI;
    if ((m_ier & UART_IER_THRI) && m_thr_empty_pending) return UART_IIR_THRI;
    if ((m_ier & UART_IER_MSI) && m_msr_deltas != 0) return UART_IIR_MSI;
    return UART_IIR_NO_INT;
}

uint8_t Serial::read_iir() {
    const uint8_t id = pending_interrupt_id();
    // Reading IIR while it reports THR empty clears that interrupt (Table 4,
    // "Interrupt Reset Control"); the other sources clear when serviced.
    if (id == UART_IIR_THRI) m_thr_empty_pending = false;
    const uint8_t fifo_bits = (m_fcr & UART_FCR_ENABLE_FIFO) ? kIirFifosEnabled : 0;
    return static_cast<uint8_t>(id | fifo_bits);
}

uint8_t Serial::read_lsr() {
    uint8_t lsr = UART_LSR_THRE | UART_LSR_TEMT;
    if (!m_rx.empty()) lsr |= UART_LSR_DR;
    if (m_overrun) lsr |= UART_LSR_OE;
    m_overrun = false;  // OE clears on read, and with it the line-status interrupt
    return lsr;
}

uint8_t Serial::read_msr() {
    const auto msr = static_cast<uint8_t>(modem_inputs() | m_msr_deltas);
    m_msr_deltas = 0;
    return msr;
}

// In loopback the modem inputs are wired to the modem outputs (§8.7, MCR bit
// 4): CTS<-RTS, DSR<-DTR, RI<-OUT1, DCD<-OUT2. Linux's autoconfig() sets
// LOOP|OUT2|RTS and expects exactly DCD|CTS.
uint8_t Serial::modem_inputs() const {
    if (!loopback()) return kMsrInputsAsserted;
    uint8_t inputs = 0;
    if (m_mcr & UART_MCR_RTS) inputs |= UART_MSR_CTS;
    if (m_mcr & UART_MCR_DTR) inputs |= UART_MSR_DSR;
    if (m_mcr & UART_MCR_OUT1) inputs |= UART_MSR_RI;
    if (m_mcr & UART_MCR_OUT2) inputs |= UART_MSR_DCD;
    return inputs;
}

void Serial::write_ier(uint8_t value) {
    const bool thri_was_enabled = (m_ier & UART_IER_THRI) != 0;
    m_ier = value & kIerMask;
    // Enabling ETBEI while THR is empty (always, here) raises the THRE
    // interrupt at once. Linux relies on it: start_tx() only sets IER.THRI and
    // waits for the interrupt, and startup() tests that it re-asserts.
    if (!thri_was_enabled && (m_ier & UART_IER_THRI)) m_thr_empty_pending = true;
}

void Serial::write_fcr(uint8_t value) {
    const bool was_enabled = (m_fcr & UART_FCR_ENABLE_FIFO) != 0;
    const bool enable = (value & UART_FCR_ENABLE_FIFO) != 0;
    // Changing FCR0 resets both FIFOs; the other bits only take effect with
    // FCR0 set (§8.5). The transmit FIFO is always empty, so CLEAR_XMIT has
    // nothing to do.
    if (was_enabled != enable || (enable && (value & UART_FCR_CLEAR_RCVR))) m_rx.clear();
    m_fcr = enable ? static_cast<uint8_t>(value & kFcrKept) : 0;
}

void Serial::write_mcr(uint8_t value) {
    const uint8_t before = modem_inputs();
    m_mcr = value & kMcrMask;
    const uint8_t after = modem_inputs();
    const auto changed = static_cast<uint8_t>(before ^ after);
    if (changed & UART_MSR_CTS) m_msr_deltas |= UART_MSR_DCTS;
    if (changed & UART_MSR_DSR) m_msr_deltas |= UART_MSR_DDSR;
    if (changed & UART_MSR_DCD) m_msr_deltas |= UART_MSR_DDCD;
    if ((before & UART_MSR_RI) && !(after & UART_MSR_RI)) m_msr_deltas |= UART_MSR_TERI;  // trailing edge only
}

void Serial::transmit(uint8_t byte, Effects& fx) {
    if (loopback()) {
        receive_loopback(byte);
    } else {
        fx.output = byte;
    }
    // The byte left at once: THR is empty again, which is a new THRE
    // interrupt condition (writing THR cleared the previous one).
    m_thr_empty_pending = true;
}

void Serial::receive_loopback(uint8_t byte) {
    // A full FIFO drops the new character and flags an overrun (§8.4, LSR bit 1).
    if (m_rx.size() >= kHardwareFifoDepth || !m_rx.push(byte)) {
        m_overrun = true;
        m_overruns.fetch_add(1, std::memory_order_relaxed);
    }
}

bool Serial::take_rx_room_notification() {
    if (!m_producer_waiting || m_rx.size() > kRxFifoCapacity / 2) return false;
    m_producer_waiting = false;
    return true;
}

void Serial::apply(const Effects& fx) {
    if (fx.output) {
        m_bytes_out.fetch_add(1, std::memory_order_relaxed);
        if (m_output) m_output(std::span<const uint8_t>(&*fx.output, 1));
    }
    if (fx.raise_irq && m_irq) m_irq->trigger();
    if (fx.rx_room && m_rx_room_callback) m_rx_room_callback();
}

size_t Serial::enqueue_input(std::span<const uint8_t> bytes) {
    size_t accepted = 0;
    bool raise = false;
    {
        std::lock_guard lock(m_mutex);
        const bool was_high = irq_pin_high();
        while (accepted < bytes.size() && m_rx.push(bytes[accepted])) ++accepted;
        if (accepted < bytes.size()) m_producer_waiting = true;
        raise = !was_high && irq_pin_high();
    }
    m_bytes_in.fetch_add(accepted, std::memory_order_relaxed);
    if (raise && m_irq) m_irq->trigger();
    return accepted;
}

size_t Serial::rx_space() const {
    std::lock_guard lock(m_mutex);
    return m_rx.space();
}

void Serial::set_rx_room_callback(std::function<void()> callback) {
    std::lock_guard lock(m_mutex);
    m_rx_room_callback = std::move(callback);
}

SerialStats Serial::stats() const {
    return SerialStats{m_bytes_out.load(std::memory_order_relaxed), m_bytes_in.load(std::memory_order_relaxed),
                       m_overruns.load(std::memory_order_relaxed)};
}

}  // namespace keel
