#include "clock.h"

#include "console.h"
#include "hw.h"

extern "C" char interrupt_stubs[];

namespace hostile {
namespace {

constexpr uint64_t kLapic = 0xFEE00000;
constexpr uint32_t kLapicEoi = 0xB0;
constexpr uint32_t kLapicSpurious = 0xF0;
constexpr uint32_t kLapicTimerLvt = 0x320;
constexpr uint32_t kLapicTimerInitial = 0x380;
constexpr uint32_t kLapicTimerCurrent = 0x390;
constexpr uint32_t kLapicTimerDivide = 0x3E0;
constexpr uint32_t kLvtMasked = 1u << 16;
constexpr uint32_t kLvtPeriodic = 1u << 17;
constexpr uint64_t kIoapic = 0xFEC00000;
constexpr uint8_t kTimerVector = 0x40;
constexpr uint8_t kSpuriousVector = 0xFF;
// KVM's APIC bus runs at 1 GHz (APIC_BUS_CYCLE_NS); divide by 16.
constexpr uint32_t kDivideBy16 = 0x3;
constexpr uint64_t kTimerTicksPerMs = 1'000'000 / 16;

struct [[gnu::packed]] IdtEntry {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t type;
    uint16_t offset_mid;
    uint32_t offset_high;
    uint32_t reserved;
};
struct [[gnu::packed]] IdtPointer {
    uint16_t limit;
    uint64_t base;
};

IdtEntry idt[256];
uint64_t tsc_start = 0;
uint64_t tsc_per_us = 1;

void lapic_write(uint32_t reg, uint32_t value) {
    mmio_write<uint32_t>(kLapic + reg, value);
}
uint32_t lapic_read(uint32_t reg) {
    return mmio_read<uint32_t>(kLapic + reg);
}

void install_idt() {
    const uint64_t stubs = gpa_of(interrupt_stubs);
    for (unsigned vector = 0; vector < 256; ++vector) {
        const uint64_t handler = stubs + 16 * vector;
        idt[vector] =
            IdtEntry{static_cast<uint16_t>(handler),       0x08, 0, 0x8E, static_cast<uint16_t>(handler >> 16),
                     static_cast<uint32_t>(handler >> 32), 0};
    }
    const IdtPointer pointer{sizeof(idt) - 1, gpa_of(&idt[0])};
    asm volatile("lidt %0" ::"m"(pointer));
}

}  // namespace

void init_interrupts_and_clock() {
    install_idt();
    // Mask every line of KVM's 8259 pair: never initialised, it would deliver
    // IRQ n (the virtio-mmio devices' GSIs 5 and up) as vector n, an
    // exception number, through LINT0 once interrupts are on.
    outb(0x21, 0xFF);
    outb(0xA1, 0xFF);
    lapic_write(kLapicSpurious, 0x100u | kSpuriousVector);  // APIC software enable
    // Calibrate the TSC over 50 ms of the APIC timer, counted down with the
    // timer masked (no interrupt needed for that).
    lapic_write(kLapicTimerDivide, kDivideBy16);
    lapic_write(kLapicTimerLvt, kLvtMasked | kTimerVector);
    const auto ticks = static_cast<uint32_t>(50 * kTimerTicksPerMs);
    lapic_write(kLapicTimerInitial, ticks);
    const uint64_t begin = rdtsc();
    while (lapic_read(kLapicTimerCurrent) != 0) cpu_relax();
    const uint64_t elapsed = rdtsc() - begin;
    tsc_per_us = elapsed / 50'000 == 0 ? 1 : elapsed / 50'000;
    tsc_start = rdtsc();
}

uint64_t now_us() {
    return (rdtsc() - tsc_start) / tsc_per_us;
}

void delay_us(uint64_t microseconds) {
    const uint64_t end = now_us() + microseconds;
    while (now_us() < end) cpu_relax();
}

void halt_until(bool (*done)()) {
    // The APIC timer, periodic, is only a backstop against a lost interrupt:
    // whatever the guest waits for raises one of its own.
    lapic_write(kLapicTimerDivide, kDivideBy16);
    lapic_write(kLapicTimerLvt, kLvtPeriodic | kTimerVector);
    lapic_write(kLapicTimerInitial, static_cast<uint32_t>(500 * kTimerTicksPerMs));
    while (!done()) asm volatile("sti; hlt; cli");
    lapic_write(kLapicTimerLvt, kLvtMasked | kTimerVector);
}

void route_isa_irq(uint8_t irq, uint8_t vector) {
    // IOAPIC redirection entry `irq` (KVM's default GSI routing: ISA IRQ n is
    // pin n): fixed delivery to APIC ID 0, edge, active high, unmasked.
    mmio_write<uint32_t>(kIoapic, 0x10u + 2u * irq);
    mmio_write<uint32_t>(kIoapic + 0x10, vector);
    mmio_write<uint32_t>(kIoapic, 0x11u + 2u * irq);
    mmio_write<uint32_t>(kIoapic + 0x10, 0);
}

}  // namespace hostile

extern "C" void interrupt_dispatch(uint64_t vector, uint64_t error_code, uint64_t rip) {
    using namespace hostile;
    if (vector < 32) {
        put("KEEL-ATTACK fatal exception ");
        put_dec(vector);
        put(" error ");
        put_hex(error_code);
        put(" rip ");
        put_hex(rip);
        put("\n");
        power_off();
    }
    if (vector != kSpuriousVector) lapic_write(kLapicEoi, 0);
}
