// Accesses no driver makes: random offsets and widths over a device's
// register window, MSI-X table abuse, and random port and MMIO pokes over the
// whole machine.

#include <linux/virtio_pci.h>

#include "attack_support.h"
#include "hw.h"

namespace hostile {

// The device-status register: a random write there would start the device
// on garbage rings that point into this guest's own memory.
static bool is_status_register(const Device& d, uint64_t offset, unsigned width) {
    const uint64_t status = d.transport->status_register() - d.transport->window_base();
    return offset <= status + 3 && status < offset + width;
}

// Config reads and writes far past the device's configuration, then random
// accesses of every width over the whole register window.
uint16_t window_out_of_range(Device& d) {
    for (uint32_t offset = 0x100; offset < 0xE00; offset += 0x37) {
        (void)d.transport->config8(offset);
        d.transport->write_config8(offset, 0xFF);
    }
    uint64_t state = 0x9E3779B97F4A7C15ull ^ d.transport->window_base();
    const uint64_t base = d.transport->window_base();
    const uint64_t size = d.transport->window_size();
    for (int i = 0; i < 3000; ++i) {
        const uint64_t r = xorshift(state);
        const unsigned width = 1u << (r & 3);
        const uint64_t offset = ((r >> 8) % size) & ~uint64_t{width - 1};
        if (is_status_register(d, offset, width)) continue;
        poke(base + offset, width, xorshift(state), (r & 4) != 0);
    }
    return ignored_if_still_works(d);
}

// MSI-X (PCI): vectors past the table, unaligned and partial table writes,
// writes to the read-only PBA, messages to nonsense addresses, the enable and
// function-mask bits toggled under a running device.
uint16_t msix_abuse(Device& d) {
    auto& pci = static_cast<PciTransport&>(*d.transport);
    pci.select_queue(d.request_queue);
    pci.write_queue_vector(0x1234);
    if (pci.queue_vector() != VIRTIO_MSI_NO_VECTOR) return kBroken;
    pci.write_config_vector(static_cast<uint16_t>(pci.msix_entries()));
    if (pci.config_vector() != VIRTIO_MSI_NO_VECTOR) return kBroken;

    const uint64_t table = pci.msix_table();
    for (uint16_t entry = 0; entry < pci.msix_entries() + 4; ++entry) {
        const uint64_t e = table + uint64_t{entry} * 16;
        mmio_write<uint32_t>(e, 0xDEAD0000u + entry);  // not an APIC address
        mmio_write<uint32_t>(e + 4, 0xFFFFFFFF);
        mmio_write<uint32_t>(e + 8, 0x41);
        mmio_write<uint8_t>(e + 13, 0xFF);  // partial, unaligned
        mmio_write<uint64_t>(e, 0xFEE00000'00000041ull);
        mmio_write<uint32_t>(e + 12, 0);  // unmask
    }
    for (uint32_t offset = 0; offset < 64; offset += 4) mmio_write<uint32_t>(pci.msix_pba() + offset, 0xFFFFFFFF);
    const auto control = static_cast<uint16_t>(pci.msix_capability() + 2);
    // Enable with the function masked, then unmasked, while requests flow.
    PciTransport::config_write16(pci.slot(), control, 0xC000);
    pci.write_queue_vector(0);
    PciTransport::config_write16(pci.slot(), control, 0x8000);
    const bool works = prove_works(d);
    PciTransport::config_write16(pci.slot(), control, 0);
    pci.write_queue_vector(VIRTIO_MSI_NO_VECTOR);
    for (uint16_t entry = 0; entry < pci.msix_entries(); ++entry) mmio_write<uint32_t>(table + entry * 16u + 12, 1);
    return works ? kIgnored : kBroken;
}

namespace {

// Ports whose owner is the guest's own plumbing, not keel's attack surface:
// the console (the test reads it), ACPI sleep/reset and the i8042 (they end
// the VM), and the in-kernel PIC/PIT (reprogrammed, they would interrupt
// this guest with vectors it never set up).
bool port_excluded(uint16_t port) {
    return (port >= 0x3F8 && port <= 0x3FF) || (port >= 0x600 && port <= 0x602) || port == 0x60 || port == 0x64 ||
           (port >= 0x20 && port <= 0x21) || (port >= 0xA0 && port <= 0xA1) || (port >= 0x40 && port <= 0x43) ||
           port == 0x61 || port == 0x4D0 || port == 0x4D1;
}

// MMIO the guest needs itself: the local APIC and IOAPIC (in KVM, its clock
// and interrupt routing) and KVM's private pages.
bool mmio_excluded(uint64_t address) {
    return (address >= 0xFEC0'0000 && address < 0xFEC0'1000) || (address >= 0xFEE0'0000 && address < 0xFEE0'1000) ||
           (address >= 0xFFFB'C000 && address < 0xFFFC'0000);
}

}  // namespace

void random_port_pokes(uint32_t count, uint64_t seed) {
    uint64_t state = seed;
    for (uint32_t i = 0; i < count; ++i) {
        const uint64_t r = xorshift(state);
        const auto port = static_cast<uint16_t>(r >> 16);
        if (port_excluded(port) || port_excluded(static_cast<uint16_t>(port + 3))) continue;
        const auto value = static_cast<uint32_t>(xorshift(state));
        switch (r & 7) {
            case 0:
                outb(port, static_cast<uint8_t>(value));
                break;
            case 1:
                outw(port, static_cast<uint16_t>(value));
                break;
            case 2:
                outl(port, value);
                break;
            case 3:
                (void)inb(port);
                break;
            case 4:
                (void)inw(port);
                break;
            default:
                (void)inl(port);
                break;
        }
    }
}

void random_mmio_pokes(uint32_t count, uint64_t seed, uint64_t ram_top) {
    // Half the pokes land where keel has devices (boot timer, PCI window,
    // virtio-mmio windows, ECAM), the rest anywhere outside RAM below 8 GiB.
    static constexpr uint64_t kDeviceRanges[][2] = {
        {0xC000'0000, 0x1000}, {0xC100'0000, 0x40'0000}, {0xD000'0000, 0x2'0000}, {0xE000'0000, 0x10'0000}};
    uint64_t state = seed;
    for (uint32_t i = 0; i < count; ++i) {
        const uint64_t r = xorshift(state);
        const unsigned width = 1u << (r & 3);
        uint64_t address;
        if ((r & 4) != 0) {
            const auto& range = kDeviceRanges[(r >> 3) % 4];
            address = range[0] + (xorshift(state) % range[1]);
        } else if ((r & 8) != 0 || ram_top >= 8ull << 30) {
            address = 0xC000'0000 + (xorshift(state) % 0x4000'0000);
        } else {
            address = ram_top + (xorshift(state) % ((8ull << 30) - ram_top));
        }
        address &= ~uint64_t{width - 1};
        if (mmio_excluded(address)) continue;
        // Never a device-status register (offset 0x70 of a virtio-mmio
        // window, byte 20 of a virtio-pci common config): started on random
        // rings, a device would write into this guest's own memory.
        const uint64_t in_page = address & 0xFFF;
        const bool mmio_status =
            address >= 0xD000'1000 && address < 0xD002'0000 && in_page <= 0x73 && in_page + width > 0x70;
        const bool pci_status =
            address >= 0xC100'0000 && address < 0xD000'0000 && in_page <= 20 && in_page + width > 20;
        const bool write = (r & 16) != 0 && !mmio_status && !pci_status;
        poke(address, width, xorshift(state), write);
    }
}

}  // namespace hostile
