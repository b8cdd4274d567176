#pragma once

// PCI bus 0 behind a host bridge, and the two ways a guest reaches its config
// space: configuration mechanism #1 (ports 0xCF8/0xCFC, PCI 3.0 §3.2.2.3.2) and
// ECAM (PCIe 5.0 §7.2.2, described to the guest by the ACPI MCFG table).
//
// BARs are assigned once, at setup, and never move. A guest that writes a
// BAR reads back what it wrote (so sizing with all-ones, and restoring the
// old value, work as on hardware), but the device keeps decoding at the
// assigned address: the MMIO bus is immutable once vCPUs run. This is enough
// for Linux, which keeps firmware-assigned BARs that sit inside a window of
// the host bridge's _CRS (pcibios_resource_survey / pci_claim_resource) and
// only reassigns conflicting or unassigned ones. A move is logged once per
// function (PciConfigSpace).
//
// Decoding likewise ignores the command register's Memory Space Enable bit:
// Linux clears it only around BAR sizing (__pci_read_base), when it does not
// touch the BARs, and sets it in pci_enable_device before a driver does.

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "bus/bus.h"
#include "bus/bus_device.h"
#include "pci/pci_device.h"

namespace keel::pci {

inline constexpr uint8_t kSlotCount = 32;     // devices per bus
inline constexpr uint8_t kFunctionCount = 8;  // functions per device

struct PciAddress {
    uint8_t bus = 0;
    uint8_t device = 0;    // 0..31
    uint8_t function = 0;  // 0..7
};

// The host bridge's identity. Red Hat's 1b36:0008 is the ID its PCI ID
// registry (QEMU docs/specs/pci-ids) gives a generic PCIe host bridge for
// virtual machines; Linux has no quirks for it.
// Base class 06h (bridge), sub-class 00h (host bridge), PCI 3.0 Appendix D.
inline constexpr uint32_t kClassHostBridge = 0x06'00'00;
inline constexpr PciIdentity kHostBridgeIdentity{
    .vendor_id = 0x1b36,
    .device_id = 0x0008,
    .revision_id = 0,
    .class_code = kClassHostBridge,
    .subsystem_vendor_id = 0x1b36,
    .subsystem_id = 0x0008,
};

// A BAR as placed by PciRoot::assign_bars (for logs, stats and tests).
struct AssignedBar {
    uint8_t slot = 0;
    uint8_t index = 0;
    uint64_t address = 0;
    uint64_t size = 0;
};

class PciRoot {
public:
    // Puts the host bridge at 00:00.0.
    explicit PciRoot(const PciIdentity& host_bridge = kHostBridgeIdentity);

    // ---- Setup, before vCPUs run (throw keel::Error) ----
    // Function 0 of the lowest free slot (from 1); returns the slot.
    uint8_t add_device(std::shared_ptr<PciDevice> device);
    void add_device_at(uint8_t slot, std::shared_ptr<PciDevice> device);
    // Assigns every BAR of every device inside [window_start, window_start +
    // window_size): naturally aligned, largest first; tells each device
    // (bar_assigned) and inserts each BAR's BusDevice into `mmio_bus`, named
    // "<device name> BAR<n>". Call once, after the last add_device.
    void assign_bars(Bus& mmio_bus, uint64_t window_start, uint64_t window_size);
    [[nodiscard]] const std::vector<AssignedBar>& assigned_bars() const { return m_assigned; }
    [[nodiscard]] std::shared_ptr<PciDevice> device(uint8_t slot) const;

    // ---- Guest config access (vCPU threads; serialised under one lock) ----
    // Absent bus/device/function: reads are all-ones, writes ignored (§6.1:
    // a master abort on a config read returns 0xFFFF...). `offset` must be a
    // multiple of data.size() (1, 2 or 4) and below 4096; else likewise.
    void config_read(PciAddress address, uint16_t offset, std::span<uint8_t> data);
    void config_write(PciAddress address, uint16_t offset, std::span<const uint8_t> data);

private:
    [[nodiscard]] PciDevice* find(PciAddress address, uint16_t offset, size_t size) const;

    std::array<std::shared_ptr<PciDevice>, kSlotCount> m_slots{};
    std::vector<AssignedBar> m_assigned;
    bool m_bars_assigned = false;
    std::mutex m_config_mutex;
};

// Configuration mechanism #1 (PCI 3.0 §3.2.2.3.2): insert on the PIO bus at
// 0xCF8 for kPortCount ports. Offsets 0-3: CONFIG_ADDRESS (dword accesses
// only; bit 31 enable, 23:16 bus, 15:11 device, 10:8 function, 7:2
// register); offsets 4-7: CONFIG_DATA, where an access of 1, 2 or 4 bytes at
// 0xCFC + n reaches register + n. With the enable bit clear, data reads are
// all-ones and writes are ignored.
class PciConfigIoPort final : public BusDevice {
public:
    static constexpr uint16_t kPortCount = 8;

    explicit PciConfigIoPort(std::shared_ptr<PciRoot> root) : m_root(std::move(root)) {}
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

private:
    std::shared_ptr<PciRoot> m_root;
    std::mutex m_mutex;  // CONFIG_ADDRESS is one register shared by every vCPU
    uint32_t m_config_address = 0;
};

// ECAM for bus 0 only (PCIe 5.0 §7.2.2): offset = device << 15 | function <<
// 12 | register. Insert on the MMIO bus at the MCFG base for kSize bytes.
class PciEcam final : public BusDevice {
public:
    static constexpr uint64_t kSize = uint64_t{kSlotCount} * kFunctionCount * kExtendedConfigSpaceSize;  // 1 MiB

    explicit PciEcam(std::shared_ptr<PciRoot> root) : m_root(std::move(root)) {}
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

private:
    std::shared_ptr<PciRoot> m_root;
};

}  // namespace keel::pci
