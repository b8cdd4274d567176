#include "core/virtio_placement.h"

#include <sstream>

#include "arch/x86_64/layout.h"
#include "common/error.h"

namespace keel {

std::vector<MmioPlacement> place_mmio_devices(size_t count) {
    // GSIs below kFirstDeviceIrq belong to the PIT, i8042 and COM1.
    const size_t max_devices = x86::kIoapicPins - x86::kFirstDeviceIrq;
    if (count > max_devices) {
        throw Error(std::to_string(count) + " virtio devices do not fit virtio-mmio's " + std::to_string(max_devices) +
                    " interrupt lines; use --transport pci");
    }
    std::vector<MmioPlacement> placements;
    for (size_t i = 0; i < count; ++i) {
        placements.push_back(MmioPlacement{Gpa{x86::kVirtioMmioStart.value + i * x86::kVirtioMmioStride},
                                           x86::kVirtioMmioStride,
                                           static_cast<uint32_t>(x86::kFirstDeviceIrq + i)});
    }
    return placements;
}

bool mmio_needs_cmdline_devices(std::string_view cmdline) {
    std::istringstream words{std::string(cmdline)};
    std::string word;
    bool acpi_off = false;
    // The last acpi= wins, as in the kernel's early parameter parsing.
    while (words >> word) {
        if (word.starts_with("acpi=")) acpi_off = word == "acpi=off";
    }
    return acpi_off;
}

}  // namespace keel
