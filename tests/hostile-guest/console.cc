#include "console.h"

#include "clock.h"
#include "hw.h"
#include "protocol.h"

namespace hostile {
namespace {

constexpr uint16_t kCom1 = 0x3F8;
constexpr uint16_t kInterruptEnable = kCom1 + 1;
constexpr uint16_t kModemControl = kCom1 + 4;
constexpr uint16_t kLineStatus = kCom1 + 5;
constexpr uint8_t kDataReady = 0x01;
constexpr uint8_t kReceiveInterrupt = 0x01;
constexpr uint8_t kOut2 = 0x08;  // gates the UART's interrupt on a PC
constexpr uint8_t kCom1Irq = 4;
constexpr uint8_t kCom1Vector = 0x44;
constexpr uint8_t kTransmitterEmpty = 0x20;
constexpr uint16_t kAcpiSleepControl = 0x600;
constexpr uint8_t kSleepS5 = 0x34;  // SLP_EN | SLP_TYP 5

}  // namespace

void put_char(char c) {
    while ((inb(kLineStatus) & kTransmitterEmpty) == 0) cpu_relax();
    outb(kCom1, static_cast<uint8_t>(c));
}

void put(const char* text) {
    while (*text != '\0') put_char(*text++);
}

void put_dec(uint64_t value) {
    char digits[21];
    int n = 0;
    do {
        digits[n++] = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (n > 0) put_char(digits[--n]);
}

void put_hex(uint64_t value) {
    put("0x");
    bool started = false;
    for (int shift = 60; shift >= 0; shift -= 4) {
        const auto nibble = static_cast<unsigned>((value >> shift) & 0xF);
        if (nibble == 0 && !started && shift != 0) continue;
        started = true;
        put_char("0123456789abcdef"[nibble]);
    }
}

char wait_for_console_byte() {
    route_isa_irq(kCom1Irq, kCom1Vector);
    outb(kModemControl, kOut2);
    outb(kInterruptEnable, kReceiveInterrupt);
    halt_until([] { return (inb(kLineStatus) & kDataReady) != 0; });
    outb(kInterruptEnable, 0);
    return static_cast<char>(inb(kCom1));
}

void power_off() {
    outb(kAcpiSleepControl, kSleepS5);
    // keel stops the vCPUs; nothing below runs unless S5 was ignored.
    for (;;) asm volatile("cli; hlt");
}

void fatal(const char* what, uint64_t value) {
    put(keel::hostile::kLinePrefix);
    put("fatal ");
    put(what);
    put(" ");
    put_hex(value);
    put("\n");
    power_off();
}

}  // namespace hostile

extern "C" {

void* memset(void* destination, int value, size_t size) {
    auto* bytes = static_cast<volatile uint8_t*>(destination);
    for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(value);
    return destination;
}

void* memcpy(void* destination, const void* source, size_t size) {
    auto* to = static_cast<volatile uint8_t*>(destination);
    const auto* from = static_cast<const volatile uint8_t*>(source);
    for (size_t i = 0; i < size; ++i) to[i] = from[i];
    return destination;
}

int memcmp(const void* a, const void* b, size_t size) {
    const auto* x = static_cast<const uint8_t*>(a);
    const auto* y = static_cast<const uint8_t*>(b);
    for (size_t i = 0; i < size; ++i) {
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    }
    return 0;
}

// A pure virtual call cannot happen in this guest; the ABI still wants the symbol.
void __cxa_pure_virtual() {
    hostile::fatal("pure virtual call");
}
}
