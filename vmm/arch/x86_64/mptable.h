#pragma once

// The Intel MultiProcessor Specification 1.4 tables: how kernels without
// ACPI (or booted with acpi=off) find the vCPUs, the IOAPIC and the ISA
// interrupt wiring.
//
//   kEbdaStart (0x9fc00):          MP floating pointer (16 bytes; Linux scans
//                                  the first KiB of the EBDA for "_MP_")
//   kMpConfigTableStart (0xf0000): MP configuration table (up to ~5 KiB at
//                                  kMaxVcpus, more than the EBDA's 1 KiB)
//
// Both areas are e820-reserved. The interrupt wiring is the one the MADT
// describes: ISA IRQ n -> IOAPIC pin n, except IRQ 0 -> pin kPitGsi.

#include <cstdint>
#include <span>
#include <vector>

#include "memory/gpa.h"
#include "memory/guest_memory.h"

namespace keel::x86 {

struct MpTableLayout {
    Gpa floating_pointer;
    Gpa config_table;
    uint64_t config_table_size = 0;
};

// The configuration table (header and base entries, checksummed) for vCPUs
// with `apic_ids`, vCPU 0 the boot processor. Throws keel::Error for 0 or more
// than kMaxVcpus vCPUs, an ID above 0xfe or a repeated ID.
[[nodiscard]] std::vector<uint8_t> build_mp_config_table(std::span<const uint32_t> apic_ids);

// The floating pointer structure pointing at `config_table`, checksummed.
[[nodiscard]] std::vector<uint8_t> build_mp_floating_pointer(Gpa config_table);

// Writes both into guest memory at the addresses above. Throws keel::Error as
// build_mp_config_table() does, or when guest RAM does not cover them.
MpTableLayout write_mptable(const GuestMemory& mem, std::span<const uint32_t> apic_ids);

}  // namespace keel::x86
