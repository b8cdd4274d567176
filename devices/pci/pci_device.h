#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bus/bus_device.h"
#include "pci/pci_config_space.h"

namespace keel::pci {

// One memory BAR a function needs, and the device that serves it: PciRoot
// assigns the address and inserts `device` on the MMIO bus over
// [address, address + spec.size); offsets the device sees are BAR-relative.
struct BarRegion {
    BarSpec spec;
    std::shared_ptr<BusDevice> device;
};

// A PCI function (function 0 of a slot on bus 0; keel has no multi-function
// devices). Usually it owns a PciConfigSpace and forwards config accesses to
// it, intercepting what it implements itself (e.g. MSI-X message control).
class PciDevice {
public:
    virtual ~PciDevice() = default;

    // For logs and bus entry names: "virtio-blk0".
    [[nodiscard]] virtual std::string_view name() const = 0;

    // Guest config accesses (type-1 ports or ECAM). PciRoot guarantees:
    // offset < kExtendedConfigSpaceSize, data.size() is 1, 2 or 4 and offset
    // is a multiple of it; every call is made under PciRoot's config lock, so
    // config accesses of all vCPUs are serialised. Called on vCPU threads.
    virtual void config_read(uint16_t offset, std::span<uint8_t> data) = 0;
    virtual void config_write(uint16_t offset, std::span<const uint8_t> data) = 0;

    // Setup, once, before vCPUs run: the BARs this function decodes. Each
    // spec must match a BAR declared in the function's config space.
    [[nodiscard]] virtual std::vector<BarRegion> bar_regions() = 0;
    // Setup, once per region returned above, after bar_regions(): the
    // guest-physical address PciRoot assigned. The function writes it into its
    // BAR register (PciConfigSpace::set_bar_address) and may register
    // ioeventfds there. The address never changes afterwards (pci_root.h).
    virtual void bar_assigned(uint8_t index, uint64_t address) = 0;
};

}  // namespace keel::pci
