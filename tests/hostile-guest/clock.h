#pragma once

// Time and interrupts for the attack guest: an IDT whose exception entries
// report the fault, the local APIC and IOAPIC (in-kernel in KVM, so using
// them costs keel nothing), a TSC calibrated against the APIC timer, and a
// wait that halts with interrupts on.

#include <stdint.h>

namespace hostile {

void init_interrupts_and_clock();

// Microseconds since init_interrupts_and_clock(), from the calibrated TSC.
uint64_t now_us();
void delay_us(uint64_t microseconds);

// Halts the vCPU with interrupts on until done() says so (checked after
// every interrupt). keel owes the guest nothing meanwhile.
void halt_until(bool (*done)());

// Delivers ISA IRQ `irq` to this vCPU as `vector` (through KVM's IOAPIC).
void route_isa_irq(uint8_t irq, uint8_t vector);

}  // namespace hostile
