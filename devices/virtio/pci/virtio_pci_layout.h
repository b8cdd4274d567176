#pragma once

// What a virtio-pci function looks like to the guest: its PCI identity
// (virtio 1.2 §4.1.2) and where the virtio structures sit in its one memory
// BAR (§4.1.4). Pure functions of the device type and queue count, so tests
// and the transport agree on every number.

#include <cstddef>
#include <cstdint>

#include "pci/pci_config_space.h"

namespace keel::virtio {

// §4.1.2: "The PCI Vendor ID 0x1AF4"; non-transitional (modern-only) devices
// have PCI Device ID 0x1040 + the virtio device ID.
inline constexpr uint16_t kVirtioPciVendor = 0x1af4;
inline constexpr uint16_t kVirtioPciModernDeviceBase = 0x1040;
// §4.1.2.1: "Non-transitional devices MUST have a PCI Revision ID of 1 or
// higher" (drivers match any revision; Linux's virtio_pci does not check it).
inline constexpr uint8_t kVirtioPciRevision = 1;

// Identity of a modern virtio-pci function for device type `device_type`
// (VIRTIO_ID_*):
//  - device ID 0x1040 + type. Linux's vp_modern_probe derives the virtio
//    device type from it (device - 0x1040) and ignores the subsystem IDs for
//    such devices.
//  - subsystem vendor 0x1af4 (Linux reports it as the virtio vendor), and
//    subsystem ID = the device ID: §4.1.2.1 wants it >= 0x40 for
//    non-transitional devices, so a legacy driver that keys on the subsystem
//    ID (the legacy virtio device type, < 0x40) never claims the function.
//  - class code per device type (§4.1.2.1 leaves it open): what lspci users
//    of other hypervisors see, see virtio_pci_class_code().
[[nodiscard]] pci::PciIdentity virtio_pci_identity(uint32_t device_type);

// Class code (base << 16 | sub-class << 8 | interface, PCI 3.0 Appendix D).
// Linux's virtio_pci binds by vendor ID alone, so the class only decides
// what lspci prints and that no class driver binds; keel picks what users of
// other hypervisors already see: block 0x010000 (mass storage, SCSI
// controller), net 0x020000 (Ethernet), console 0x078000 (communication,
// other), and 0x00ff00 for everything else, rng included (base class 00h,
// sub-class ffh: lspci's "Unclassified device [00ff]"; 0x000000 would claim
// a device built before class codes existed).
[[nodiscard]] uint32_t virtio_pci_class_code(uint32_t device_type);

// The BAR holding every virtio structure and the MSI-X table and PBA.
// 64-bit so PciRoot may place it above 4 GiB, and not prefetchable: reading
// the ISR clears it (PCI 3.0 §6.2.5.1: prefetchable ranges have no read
// side effects).
inline constexpr uint8_t kVirtioPciBar = 0;
inline constexpr uint64_t kVirtioPciPage = 0x1000;

// Offsets inside the BAR, each structure on its own 4 KiB page so each could
// be mapped (or trapped) alone, and lengths as the capabilities state them.
struct VirtioPciLayout {
    uint16_t num_queues = 0;
    uint16_t msix_vectors = 0;  // num_queues + 1: vector per queue + config changes

    static constexpr uint32_t kCommonOffset = 0x0000;
    static constexpr uint32_t kIsrOffset = 0x1000;
    static constexpr uint32_t kIsrLength = 1;  // §4.1.4.5: a single byte
    static constexpr uint32_t kDeviceOffset = 0x2000;
    // The whole page: VirtioDevice does not state its config size, reads
    // past the end of it return zeros, and Linux maps at most one page.
    static constexpr uint32_t kDeviceLength = 0x1000;
    static constexpr uint32_t kNotifyOffset = 0x3000;
    // §4.1.4.4: queue q notifies at notify offset + queue_notify_off *
    // notify_off_multiplier. queue_notify_off = q and a multiplier of 4 give
    // each queue its own dword, so a KVM ioeventfd per queue needs no
    // datamatch; Linux writes 16 bits there (vp_notify: iowrite16).
    static constexpr uint32_t kNotifyOffMultiplier = 4;

    uint32_t notify_length = 0;  // num_queues * multiplier
    uint32_t msix_table_offset = 0;
    uint32_t msix_pba_offset = 0;
    uint64_t bar_size = 0;  // a power of two (BAR sizing)

    // Throws keel::Error when the queue count does not fit MSI-X (a vector
    // per queue plus one, at most 2048) or is zero.
    [[nodiscard]] static VirtioPciLayout for_queues(size_t num_queues);

    [[nodiscard]] uint32_t notify_address_offset(uint16_t queue) const {
        return kNotifyOffset + uint32_t{queue} * kNotifyOffMultiplier;
    }
};

}  // namespace keel::virtio
