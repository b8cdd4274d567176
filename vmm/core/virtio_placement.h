#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "memory/gpa.h"

namespace keel {

// Where virtio-mmio device i lives: its 4 KiB register window and its GSI.
struct MmioPlacement {
    Gpa base;
    uint64_t size = 0;
    uint32_t gsi = 0;
};

// Windows from x86::kVirtioMmioStart, one per device, and GSIs from
// x86::kFirstDeviceIrq up to the last IOAPIC pin. Throws keel::Error when
// `count` devices do not fit (the message suggests --transport pci).
[[nodiscard]] std::vector<MmioPlacement> place_mmio_devices(size_t count);

// Whether the guest needs virtio_mmio.device= parameters to find virtio-mmio
// devices: only when it will not read ACPI (acpi=off on its command line).
// With ACPI the DSDT lists them, and a kernel that also took the parameters
// would probe each device twice (the second probe fails on the busy region).
[[nodiscard]] bool mmio_needs_cmdline_devices(std::string_view cmdline);

}  // namespace keel
