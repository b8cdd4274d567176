#pragma once

// How the guest learns about keel's PCI host bridge through ACPI:
// - MCFG (PCI Firmware Specification 3.2 §4.1.2): where ECAM lives;
// - \_SB.PCI0 (PNP0A08, compatible PNP0A03): the root bridge, its bus range,
//   the 0xCF8-0xCFF config ports it decodes and the 32-bit memory window all
//   BARs live in (_CRS), and optionally INTx routes (_PRT);
// - \_SB.ECAM (PNP0C02 motherboard resources): reserves the ECAM range. Linux
//   only uses MMCONFIG that E820 or a PNP0C01/PNP0C02 _CRS reserves
//   (arch/x86/pci/mmconfig-shared.c, is_mmconf_reserved / is_acpi_reserved).
//
// No _OSC: Linux treats it as optional (drivers/acpi/pci_root.c,
// negotiate_os_control). For a PNP0A08 bridge without one it logs
// "_OSC: platform retains control of PCIe features (AE_NOT_FOUND)" and leaves
// ASPM, native PCIe hotplug, PME and AER alone, none of which keel's
// conventional-PCI functions have.

#include <cstdint>
#include <vector>

#include "arch/x86_64/acpi/dsdt.h"
#include "arch/x86_64/layout.h"
#include "memory/gpa.h"

namespace keel::x86::acpi {

// A _PRT entry: INTx pin `pin` (0 = INTA# .. 3 = INTD#) of device `slot`
// raises `gsi`. The guest programs such GSIs level-triggered, active-low
// (ACPI 6.4 §6.2.13); KVM's IOAPIC ignores the polarity of an irqfd pulse.
struct PciIntxRoute {
    uint8_t slot = 0;
    uint8_t pin = 0;
    uint32_t gsi = 0;
};

struct PciHostBridgeConfig {
    Gpa ecam_base = kPciEcamStart;  // ECAM of bus 0 (PCIe 5.0 §7.2.2)
    uint16_t segment = 0;
    uint8_t bus_start = 0;
    uint8_t bus_end = kPciBusCount - 1;
    Gpa mmio_window_start = kPciMmioWindowStart;  // below 4 GiB
    uint64_t mmio_window_size = kPciMmioWindowSize;
    std::vector<PciIntxRoute> intx_routes;  // empty: no _PRT
};

// The checksummed MCFG with one allocation for [bus_start, bus_end].
[[nodiscard]] std::vector<uint8_t> build_mcfg(const PciHostBridgeConfig& config);

// PCI0 and the ECAM reservation, for \_SB. Throws keel::Error when the
// configuration cannot be described (window above 4 GiB, bad routes).
[[nodiscard]] std::vector<AmlDevice> pci_host_bridge_devices(const PciHostBridgeConfig& config);

}  // namespace keel::x86::acpi
