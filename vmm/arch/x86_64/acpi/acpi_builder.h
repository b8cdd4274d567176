#pragma once

// Lays keel's ACPI tables out in the guest's BIOS area and writes them:
//
//   kBiosAreaStart: RSDP -> XSDT -> { FADT -> DSDT, MADT [, MCFG] }
//
// The platform is hardware-reduced ACPI (ACPI 6.4 §4.1): no SCI, PM timer or
// PM1 blocks. Power-off goes through the FADT's sleep control/status
// registers and reset through its reset register, all I/O ports from
// layout.h. The RSDP comes first, 16-byte aligned, so Linux also finds it by
// scanning 0xe0000-0xfffff when no boot protocol field carries its address.

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "arch/x86_64/acpi/dsdt.h"
#include "arch/x86_64/acpi/pci_acpi.h"
#include "memory/gpa.h"
#include "memory/guest_memory.h"

namespace keel::x86::acpi {

struct AcpiConfig {
    // One per vCPU, vCPU 0 (the boot processor) first; the index is the
    // vCPU's ACPI processor UID. 1..kMaxVcpus IDs, each <= 0xfe, no repeats.
    std::vector<uint32_t> apic_ids;
    // Devices added to \_SB after the built-in COM1 and i8042.
    std::vector<AmlDevice> devices;
    // The PCI host bridge: an MCFG table, and \_SB.PCI0 plus its ECAM
    // reservation after `devices`. Absent: no PCI, and the tables are exactly
    // those of a machine without it.
    std::optional<PciHostBridgeConfig> pci{};
};

// Where each table lies in guest memory.
struct AcpiLayout {
    Gpa rsdp;  // the entry point: boot_params.acpi_rsdp_addr / hvm_start_info.rsdp_paddr
    Gpa xsdt;
    Gpa fadt;
    Gpa madt;
    Gpa dsdt;
    Gpa mcfg{};  // 0 without PCI
    uint64_t size = 0;  // bytes from rsdp to the end of the last table
};

// The tables as one image to be copied to layout.rsdp.
struct AcpiImage {
    AcpiLayout layout;
    std::vector<uint8_t> bytes;
};

// Builds every table for `config`, placed from `base`. Throws keel::Error for
// invalid APIC IDs or devices, or when the tables exceed kAcpiTablesMaxSize.
[[nodiscard]] AcpiImage build_acpi_tables(const AcpiConfig& config, Gpa base);

// build_acpi_tables() at kBiosAreaStart, written into guest memory. Throws
// keel::Error as above or when guest RAM does not cover the area.
AcpiLayout write_acpi_tables(const GuestMemory& mem, const AcpiConfig& config);

// The individual tables, checksummed (exposed for tests).
[[nodiscard]] std::vector<uint8_t> build_fadt(Gpa dsdt);
[[nodiscard]] std::vector<uint8_t> build_madt(std::span<const uint32_t> apic_ids);
[[nodiscard]] std::vector<uint8_t> build_xsdt(std::span<const Gpa> tables);
[[nodiscard]] std::vector<uint8_t> build_rsdp(Gpa xsdt);

}  // namespace keel::x86::acpi
