#pragma once

// The DSDT keel hands the guest: the \_S5 soft-off object and the devices the
// guest cannot find by probing, described so that Linux's ACPI/PNP drivers
// bind to them with the right ports and interrupts.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "arch/x86_64/acpi/aml.h"
#include "memory/gpa.h"

namespace keel::x86::acpi {

// One device in \_SB that another subsystem describes (virtio-mmio
// transports, later the PCI host bridge): a NameSeg of 1-4 characters and its
// already-encoded objects, e.g. aml::name("_HID", aml::string("LNRO0005")).
struct AmlDevice {
    std::string name;
    std::vector<aml::Bytes> objects;
};

// Revision 2: integers in the AML are 64-bit (§5.2.11.1).
inline constexpr uint8_t kDsdtRevision = 2;

// A virtio-mmio transport as Linux's virtio_mmio driver matches it through
// ACPI (_HID "LNRO0005"): the register window and its interrupt. The window
// must lie below 4 GiB (Memory32Fixed); throws keel::Error otherwise.
[[nodiscard]] AmlDevice virtio_mmio_device(uint32_t index, Gpa base, uint64_t size, uint32_t gsi);

// The AML after the table header: \_S5, then Scope(\_SB) with COM1, the
// i8042 keyboard controller and `devices` in order.
[[nodiscard]] aml::Bytes build_dsdt_aml(std::span<const AmlDevice> devices);

// The complete, checksummed DSDT.
[[nodiscard]] std::vector<uint8_t> build_dsdt(std::span<const AmlDevice> devices);

}  // namespace keel::x86::acpi
