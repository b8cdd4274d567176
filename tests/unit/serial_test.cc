#include <catch2/catch.hpp>

#include <linux/serial_reg.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "device_fakes.h"
#include "legacy/serial.h"

using namespace keel;
using keel::test::CountingIrq;
using keel::test::RecordingLifecycle;

namespace {

// A UART with a counting IRQ line and a sink that collects output.
class UartFixture {
public:
    UartFixture() : serial(irq, [this](std::span<const uint8_t> bytes) { output.append(bytes.begin(), bytes.end()); }) {}
    UartFixture(const UartFixture&) = delete;
    UartFixture& operator=(const UartFixture&) = delete;

    uint8_t in(uint8_t reg) {
        std::array<uint8_t, 1> b{0xee};
        serial.read(reg, b);
        return b[0];
    }
    void out(uint8_t reg, uint8_t value) {
        const std::array<uint8_t, 1> b{value};
        serial.write(reg, b);
    }
    size_t enqueue(const std::string& s) {
        return serial.enqueue_input(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
    }

    std::shared_ptr<CountingIrq> irq = std::make_shared<CountingIrq>();
    std::string output;
    Serial serial;
};

constexpr uint8_t kIirFifoBits = 0xc0;

}  // namespace

TEST_CASE("UART registers read their datasheet reset values", "[serial][legacy]") {
    UartFixture uart;
    for (const auto& spec : uart::kRegisters) {
        if (spec.access == uart::Access::WriteOnly || spec.dlab == uart::Dlab::Set) continue;
        INFO(spec.name);
        CHECK(uart.in(spec.offset) == spec.reset_value);
    }
    uart.out(UART_LCR, UART_LCR_DLAB);
    CHECK(uart.in(UART_DLL) == uart::spec_of(uart::Register::Dll).reset_value);
    CHECK(uart.in(UART_DLM) == uart::spec_of(uart::Register::Dlm).reset_value);
    CHECK(uart.irq->count == 0);
}

TEST_CASE("DLAB switches offsets 0 and 1 to the divisor latch", "[serial][legacy]") {
    UartFixture uart;
    uart.out(UART_IER, UART_IER_RDI | UART_IER_RLSI);
    uart.out(UART_LCR, UART_LCR_DLAB | UART_LCR_WLEN8);
    uart.out(UART_DLL, 0x01);
    uart.out(UART_DLM, 0x02);
    CHECK(uart.in(UART_DLL) == 0x01);
    CHECK(uart.in(UART_DLM) == 0x02);
    CHECK(uart.output.empty());  // the DLL write did not transmit
    CHECK(uart.in(UART_LCR) == (UART_LCR_DLAB | UART_LCR_WLEN8));

    uart.out(UART_LCR, UART_LCR_WLEN8);
    CHECK(uart.in(UART_IER) == (UART_IER_RDI | UART_IER_RLSI));
    uart.out(UART_TX, 'k');
    CHECK(uart.output == "k");
    uart.out(UART_LCR, UART_LCR_DLAB);
    CHECK(uart.in(UART_DLL) == 0x01);  // the THR write did not touch the divisor
}

TEST_CASE("bytes written to THR reach the output sink and are counted", "[serial][legacy]") {
    UartFixture uart;
    for (const char c : std::string("hello\n")) uart.out(UART_TX, static_cast<uint8_t>(c));
    CHECK(uart.output == "hello\n");
    CHECK(uart.serial.stats().bytes_out == 6);
    CHECK((uart.in(UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT)) == (UART_LSR_THRE | UART_LSR_TEMT));
}

TEST_CASE("enabling ETBEI with THR empty raises the THRE interrupt, reading IIR clears it", "[serial][legacy]") {
    UartFixture uart;
    uart.out(UART_IER, UART_IER_THRI);
    CHECK(uart.irq->count == 1);
    CHECK(uart.in(UART_IIR) == UART_IIR_THRI);
    CHECK(uart.in(UART_IIR) == UART_IIR_NO_INT);  // cleared by the previous read

    // Writing THR empties it again at once: a new THRE interrupt, a new edge.
    uart.out(UART_TX, 'x');
    CHECK(uart.irq->count == 2);
    CHECK(uart.in(UART_IIR) == UART_IIR_THRI);

    // Linux's startup() test: IER=0 then IER=THRI must re-assert THRE.
    uart.out(UART_IER, 0);
    uart.out(UART_IER, UART_IER_THRI);
    CHECK(uart.in(UART_IIR) == UART_IIR_THRI);
    CHECK(uart.irq->count == 3);

    // Rewriting IER with THRI already set is not a new condition.
    uart.out(UART_IER, UART_IER_THRI | UART_IER_RDI);
    CHECK(uart.in(UART_IIR) == UART_IIR_NO_INT);
}

TEST_CASE("IIR reports pending interrupts in 16550 priority order", "[serial][legacy]") {
    UartFixture uart;
    uart.out(UART_FCR, UART_FCR_ENABLE_FIFO);
    // Entering loopback drops DCD/DSR/CTS: modem-status deltas are pending.
    uart.out(UART_MCR, UART_MCR_LOOP);
    // One byte more than the hardware FIFO holds: data, an overrun, and THRE.
    for (int i = 0; i <= static_cast<int>(Serial::kHardwareFifoDepth); ++i) uart.out(UART_TX, static_cast<uint8_t>(i));
    uart.out(UART_IER, UART_IER_MSI | UART_IER_RLSI | UART_IER_THRI | UART_IER_RDI);
    CHECK(uart.irq->count == 1);

    CHECK(uart.in(UART_IIR) == (kIirFifoBits | UART_IIR_RLSI));
    CHECK((uart.in(UART_LSR) & UART_LSR_OE) != 0);  // reading LSR clears OE
    CHECK(uart.in(UART_IIR) == (kIirFifoBits | UART_IIR_RDI));
    for (size_t i = 0; i < Serial::kHardwareFifoDepth; ++i) CHECK(uart.in(UART_RX) == i);
    CHECK(uart.in(UART_IIR) == (kIirFifoBits | UART_IIR_THRI));
    CHECK(uart.in(UART_IIR) == (kIirFifoBits | UART_IIR_MSI));
    CHECK((uart.in(UART_MSR) & UART_MSR_ANY_DELTA) == (UART_MSR_DDCD | UART_MSR_DDSR | UART_MSR_DCTS));
    CHECK(uart.in(UART_IIR) == (kIirFifoBits | UART_IIR_NO_INT));
    CHECK(uart.serial.stats().overruns == 1);
}

TEST_CASE("host input sets DR and raises the data interrupt when enabled", "[serial][legacy]") {
    UartFixture uart;
    CHECK(uart.enqueue("a") == 1);
    CHECK(uart.irq->count == 0);  // ERBFI is off
    CHECK((uart.in(UART_LSR) & UART_LSR_DR) != 0);

    uart.out(UART_IER, UART_IER_RDI);  // data already waiting: the pin rises now
    CHECK(uart.irq->count == 1);
    CHECK(uart.enqueue("b") == 1);
    CHECK(uart.irq->count == 1);  // pin already high: no new edge
    CHECK(uart.in(UART_IIR) == UART_IIR_RDI);
    CHECK(uart.in(UART_RX) == 'a');
    CHECK(uart.in(UART_RX) == 'b');
    CHECK((uart.in(UART_LSR) & UART_LSR_DR) == 0);
    CHECK(uart.in(UART_IIR) == UART_IIR_NO_INT);

    CHECK(uart.enqueue("c") == 1);  // pin low again: a new edge
    CHECK(uart.irq->count == 2);
    CHECK(uart.serial.stats().bytes_in == 3);
}

TEST_CASE("the receive FIFO is bounded and tells the producer when there is room", "[serial][legacy]") {
    UartFixture uart;
    int room_calls = 0;
    uart.serial.set_rx_room_callback([&] { ++room_calls; });
    const std::string paste(100, 'p');
    CHECK(uart.enqueue(paste) == Serial::kRxFifoCapacity);
    CHECK(uart.serial.rx_space() == 0);
    CHECK(uart.enqueue("more") == 0);

    const size_t to_half = Serial::kRxFifoCapacity / 2;
    for (size_t i = 0; i + 1 < to_half; ++i) (void)uart.in(UART_RX);
    CHECK(room_calls == 0);
    (void)uart.in(UART_RX);  // now half full
    CHECK(room_calls == 1);
    (void)uart.in(UART_RX);
    CHECK(room_calls == 1);  // once per refusal
    CHECK(uart.serial.rx_space() == to_half + 1);
    CHECK(uart.serial.stats().bytes_in == Serial::kRxFifoCapacity);
}

TEST_CASE("a FIFO reset through FCR empties the receive FIFO and wakes a waiting producer", "[serial][legacy]") {
    UartFixture uart;
    int room_calls = 0;
    uart.serial.set_rx_room_callback([&] { ++room_calls; });
    CHECK(uart.enqueue(std::string(Serial::kRxFifoCapacity + 1, 'z')) == Serial::kRxFifoCapacity);
    uart.out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR);
    CHECK((uart.in(UART_LSR) & UART_LSR_DR) == 0);
    CHECK(room_calls == 1);
    CHECK(uart.in(UART_IIR) == (kIirFifoBits | UART_IIR_NO_INT));

    CHECK(uart.enqueue("q") == 1);
    uart.out(UART_FCR, 0);  // disabling the FIFOs resets them too
    CHECK((uart.in(UART_LSR) & UART_LSR_DR) == 0);
    CHECK(uart.in(UART_IIR) == UART_IIR_NO_INT);
}

TEST_CASE("loopback returns THR bytes on RBR and wires MCR to MSR", "[serial][legacy]") {
    UartFixture uart;
    uart.out(UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2 | UART_MCR_RTS);
    CHECK((uart.in(UART_MSR) & 0xf0) == (UART_MSR_DCD | UART_MSR_CTS));
    uart.out(UART_TX, 'L');
    CHECK(uart.output.empty());
    CHECK((uart.in(UART_LSR) & UART_LSR_DR) != 0);
    CHECK(uart.in(UART_RX) == 'L');

    uart.out(UART_MCR, UART_MCR_LOOP | UART_MCR_DTR | UART_MCR_OUT1);
    const uint8_t msr = uart.in(UART_MSR);
    CHECK((msr & 0xf0) == (UART_MSR_DSR | UART_MSR_RI));
    CHECK((msr & UART_MSR_ANY_DELTA) == (UART_MSR_DDCD | UART_MSR_DCTS | UART_MSR_DDSR));
    uart.out(UART_MCR, UART_MCR_LOOP | UART_MCR_DTR);  // RI falls: trailing edge
    CHECK((uart.in(UART_MSR) & UART_MSR_ANY_DELTA) == UART_MSR_TERI);

    uart.out(UART_MCR, UART_MCR_OUT2 | UART_MCR_DTR | UART_MCR_RTS);
    CHECK((uart.in(UART_MSR) & 0xf0) == (UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS));
    uart.out(UART_TX, 'o');
    CHECK(uart.output == "o");
}

TEST_CASE("scratch register, reserved IER/MCR bits and wide accesses", "[serial][legacy]") {
    UartFixture uart;
    uart.out(UART_SCR, 0x5a);
    CHECK(uart.in(UART_SCR) == 0x5a);
    uart.out(UART_IER, 0xff);
    CHECK(uart.in(UART_IER) == 0x0f);
    uart.out(UART_MCR, 0xff);
    CHECK(uart.in(UART_MCR) == 0x1f);
    uart.out(UART_LSR, 0x00);  // read-only: ignored
    CHECK((uart.in(UART_LSR) & UART_LSR_THRE) != 0);

    // A 2-byte read at offset 6 covers MSR and SCR.
    std::array<uint8_t, 2> wide{};
    uart.serial.read(UART_MSR, wide);
    CHECK(wide[1] == 0x5a);
    // Bytes past the last register are ignored on write and read as zero.
    std::array<uint8_t, 4> past{0xff, 0xff, 0xff, 0xff};
    uart.serial.read(6, past);
    CHECK(past[2] == 0);
    CHECK(past[3] == 0);
}

// The register dance of Linux 6.1 drivers/tty/serial/8250/8250_port.c:
// autoconfig(), autoconfig_16550a() (with CONFIG_SERIAL_8250_16550A_VARIANTS),
// size_fifo() and the THRE / TXEN checks in serial8250_do_startup().
TEST_CASE("Linux's 8250 autoconfig identifies a plain 16550A", "[serial][legacy]") {
    UartFixture uart;
    // Existence test through IER.
    const uint8_t saved_ier = uart.in(UART_IER);
    uart.out(UART_IER, 0);
    const uint8_t scratch2 = uart.in(UART_IER) & 0x0f;
    uart.out(UART_IER, 0x0f);
    const uint8_t scratch3 = uart.in(UART_IER) & 0x0f;
    uart.out(UART_IER, saved_ier);
    CHECK(scratch2 == 0);
    CHECK(scratch3 == 0x0f);

    // Loopback test.
    const uint8_t saved_mcr = uart.in(UART_MCR);
    const uint8_t saved_lcr = uart.in(UART_LCR);
    uart.out(UART_MCR, UART_MCR_LOOP | 0x0a);
    CHECK((uart.in(UART_MSR) & 0xf0) == 0x90);
    uart.out(UART_MCR, saved_mcr);

    // FIFO detection: IIR bits 7:6 == 3 means 16550A.
    uart.out(UART_LCR, UART_LCR_CONF_MODE_B);
    uart.out(UART_EFR, 0);
    uart.out(UART_LCR, 0);
    uart.out(UART_FCR, UART_FCR_ENABLE_FIFO);
    CHECK((uart.in(UART_IIR) >> 6) == 3);

    // No EFR in either configuration mode (reads at offset 2 see IIR, never 0).
    uart.out(UART_LCR, UART_LCR_CONF_MODE_A);
    CHECK(uart.in(UART_EFR) != 0);
    uart.out(UART_LCR, UART_LCR_CONF_MODE_B);
    CHECK(uart.in(UART_EFR) != 0);

    // Not a National Semiconductor SuperIO: EXCR1 does not follow MCR.LOOP.
    uart.out(UART_LCR, 0);
    const uint8_t mcr = uart.in(UART_MCR);
    uart.out(UART_LCR, 0xe0);
    CHECK(((uart.in(2) ^ mcr) & UART_MCR_LOOP) == 0);
    uart.out(UART_LCR, 0);
    uart.out(UART_MCR, mcr ^ UART_MCR_LOOP);
    uart.out(UART_LCR, 0xe0);
    CHECK(((uart.in(2) ^ mcr) & UART_MCR_LOOP) == 0);
    uart.out(UART_LCR, 0);
    uart.out(UART_MCR, mcr);

    // Not a 16750: IIR bit 5 never follows FCR bit 5.
    uart.out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR7_64BYTE);
    CHECK((uart.in(UART_IIR) >> 5) == 6);
    uart.out(UART_LCR, UART_LCR_CONF_MODE_A);
    uart.out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR7_64BYTE);
    CHECK((uart.in(UART_IIR) >> 5) == 6);
    uart.out(UART_FCR, UART_FCR_ENABLE_FIFO);
    uart.out(UART_LCR, 0);

    // Not an XScale: IER bit 6 (UUE) does not stick.
    uart.out(UART_IER, UART_IER_UUE);
    CHECK((uart.in(UART_IER) & UART_IER_UUE) == 0);
    uart.out(UART_IER, 0);

    // size_fifo(): 256 bytes in loopback, count what comes back: 16, not 64 (U6_16550A).
    uart.out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
    uart.out(UART_MCR, UART_MCR_LOOP);
    uart.out(UART_LCR, UART_LCR_WLEN8);
    for (int i = 0; i < 256; ++i) uart.out(UART_TX, static_cast<uint8_t>(i));
    int count = 0;
    while ((uart.in(UART_LSR) & UART_LSR_DR) && count < 256) {
        (void)uart.in(UART_RX);
        ++count;
    }
    CHECK(count == 16);
    uart.out(UART_MCR, saved_mcr);
    uart.out(UART_LCR, saved_lcr);
    CHECK(uart.output.empty());  // nothing of the probe reached the console

    // startup(): LSR safety check, THRE re-assertion and TXEN checks.
    CHECK(uart.in(UART_LSR) != 0xff);
    uart.out(UART_IER, UART_IER_THRI);
    const uint8_t iir1 = uart.in(UART_IIR);
    uart.out(UART_IER, 0);
    uart.out(UART_IER, UART_IER_THRI);
    const uint8_t iir = uart.in(UART_IIR);
    uart.out(UART_IER, 0);
    CHECK_FALSE((!(iir1 & UART_IIR_NO_INT) && (iir & UART_IIR_NO_INT)));  // no UART_BUG_THRE
    uart.out(UART_IER, UART_IER_THRI);
    const uint8_t lsr = uart.in(UART_LSR);
    const uint8_t iir_txen = uart.in(UART_IIR);
    uart.out(UART_IER, 0);
    CHECK_FALSE(((lsr & UART_LSR_TEMT) && (iir_txen & UART_IIR_NO_INT)));  // no UART_BUG_TXEN
}
