#pragma once

// Output on COM1 (port 0x3F8), the only channel from the guest to the test.

#include <stdint.h>

namespace hostile {

void put(const char* text);
void put_char(char c);
void put_dec(uint64_t value);
void put_hex(uint64_t value);

// Halts until the host sends a byte on the console (a receive interrupt
// wakes the vCPU) and returns it.
char wait_for_console_byte();

// Prints "KEEL-ATTACK fatal <what>", powers the VM off and never returns: the
// test then finds the summary line missing.
[[noreturn]] void fatal(const char* what, uint64_t value = 0);

// ACPI S5 through keel's sleep control register (docs/guest-abi.md §11).
[[noreturn]] void power_off();

}  // namespace hostile
