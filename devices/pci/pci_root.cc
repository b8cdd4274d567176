#include "pci/pci_root.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <string>

#include "common/error.h"

namespace keel::pci {
namespace {

// 00:00.0: identifies the root complex; no BARs, no capabilities. Linux's
// type-1 probe (arch/x86/pci/direct.c, pci_sanity_check) wants a host bridge
// or a display device on bus 0 before it trusts ports 0xCF8/0xCFC.
class HostBridge final : public PciDevice {
public:
    explicit HostBridge(const PciIdentity& identity) : m_config(identity) {}
    [[nodiscard]] std::string_view name() const override { return "host-bridge"; }
    void config_read(uint16_t offset, std::span<uint8_t> data) override { m_config.read(offset, data); }
    void config_write(uint16_t offset, std::span<const uint8_t> data) override { m_config.write(offset, data); }
    [[nodiscard]] std::vector<BarRegion> bar_regions() override { return {}; }
    void bar_assigned(uint8_t /*index*/, uint64_t /*address*/) override {}

private:
    PciConfigSpace m_config;
};

// CONFIG_ADDRESS (PCI 3.0 §3.2.2.3.2, Figure 3-2).
constexpr uint32_t kConfigEnable = 0x8000'0000;
// Bits 30:24 are reserved and bits 1:0 read as 0: what the register keeps.
constexpr uint32_t kConfigAddressMask = kConfigEnable | 0x00ff'fffc;
constexpr uint64_t kDataOffset = 4;  // 0xCFC - 0xCF8

PciAddress decode_config_address(uint32_t value) {
    return PciAddress{.bus = static_cast<uint8_t>(value >> 16),
                      .device = static_cast<uint8_t>((value >> 11) & 0x1f),
                      .function = static_cast<uint8_t>((value >> 8) & 0x7)};
}

void fill_all_ones(std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), uint8_t{0xff});
}

// Smallest alignment keel gives a BAR: a page, so each BAR maps (and traps)
// on its own and Linux can mmap it through sysfs.
constexpr uint64_t kMinBarAlignment = 0x1000;

}  // namespace

PciRoot::PciRoot(const PciIdentity& host_bridge) {
    m_slots[0] = std::make_shared<HostBridge>(host_bridge);
}

uint8_t PciRoot::add_device(std::shared_ptr<PciDevice> device) {
    for (uint8_t slot = 1; slot < kSlotCount; ++slot) {
        if (!m_slots[slot]) {
            add_device_at(slot, std::move(device));
            return slot;
        }
    }
    throw Error("PCI: bus 0 is full (31 devices); use fewer PCI devices");
}

void PciRoot::add_device_at(uint8_t slot, std::shared_ptr<PciDevice> device) {
    if (!device) throw Error("PCI: null device");
    if (m_bars_assigned) throw Error("PCI: device added after BAR assignment");
    if (slot >= kSlotCount || m_slots[slot]) {
        throw Error("PCI: slot " + std::to_string(slot) + " is taken or out of range");
    }
    m_slots[slot] = std::move(device);
}

std::shared_ptr<PciDevice> PciRoot::device(uint8_t slot) const {
    return slot < kSlotCount ? m_slots[slot] : nullptr;
}

void PciRoot::assign_bars(Bus& mmio_bus, uint64_t window_start, uint64_t window_size) {
    if (m_bars_assigned) throw Error("PCI: BARs assigned twice");
    m_bars_assigned = true;
    struct Pending {
        uint8_t slot;
        BarRegion region;
    };
    std::vector<Pending> bars;
    for (uint8_t slot = 0; slot < kSlotCount; ++slot) {
        if (!m_slots[slot]) continue;
        for (BarRegion& region : m_slots[slot]->bar_regions()) {
            const BarSpec& spec = region.spec;
            if (!region.device || spec.index >= kBarCount || spec.size < 16 || !std::has_single_bit(spec.size)) {
                throw Error("PCI: " + std::string(m_slots[slot]->name()) + " declares a malformed BAR");
            }
            bars.push_back(Pending{slot, std::move(region)});
        }
    }
    // Largest first: with natural alignment every BAR then starts where the
    // previous one ended (rounded to a page), leaving no holes.
    std::stable_sort(bars.begin(), bars.end(),
                     [](const Pending& a, const Pending& b) { return a.region.spec.size > b.region.spec.size; });
    const uint64_t window_end = window_start + window_size;
    uint64_t cursor = window_start;
    for (Pending& bar : bars) {
        const BarSpec& spec = bar.region.spec;
        const uint64_t align = std::max(spec.size, kMinBarAlignment);
        const uint64_t address = (cursor + align - 1) & ~(align - 1);
        if (address < cursor || address > window_end || window_end - address < spec.size) {
            throw Error("PCI: the MMIO window of " + std::to_string(window_size >> 20) +
                        " MiB is too small for the devices' BARs; use fewer or smaller devices");
        }
        PciDevice& device = *m_slots[bar.slot];
        device.bar_assigned(spec.index, address);
        mmio_bus.insert(bar.region.device, address, spec.size,
                        std::string(device.name()) + " BAR" + std::to_string(spec.index));
        m_assigned.push_back(AssignedBar{bar.slot, spec.index, address, spec.size});
        spdlog::debug("PCI 00:{:02x}.0 {} BAR{}: [{:#x}, {:#x})", bar.slot, device.name(), spec.index, address,
                      address + spec.size);
        cursor = address + spec.size;
    }
}

PciDevice* PciRoot::find(PciAddress address, uint16_t offset, size_t size) const {
    // Only bus 0, function 0 of each slot exists. Sub-dword accesses must be
    // naturally aligned (they are, through 0xCFC + n and ECAM alike).
    if (address.bus != 0 || address.device >= kSlotCount || address.function != 0) return nullptr;
    if ((size != 1 && size != 2 && size != 4) || offset % size != 0 || offset + size > kExtendedConfigSpaceSize) {
        return nullptr;
    }
    return m_slots[address.device].get();
}

void PciRoot::config_read(PciAddress address, uint16_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_config_mutex);
    if (PciDevice* device = find(address, offset, data.size())) {
        device->config_read(offset, data);
    } else {
        fill_all_ones(data);
    }
}

void PciRoot::config_write(PciAddress address, uint16_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(m_config_mutex);
    if (PciDevice* device = find(address, offset, data.size())) device->config_write(offset, data);
}

void PciConfigIoPort::read(uint64_t offset, std::span<uint8_t> data) {
    uint32_t config_address = 0;
    {
        std::lock_guard lock(m_mutex);
        config_address = m_config_address;
    }
    if (offset == 0 && data.size() == 4) {
        for (size_t i = 0; i < 4; ++i) data[i] = static_cast<uint8_t>(config_address >> (8 * i));
        return;
    }
    // Byte/word accesses to 0xCF8-0xCFB are not CONFIG_ADDRESS (§3.2.2.3.2):
    // they would reach the ISA bus, where nothing answers.
    if (offset < kDataOffset || offset + data.size() > kDataOffset + 4 || (config_address & kConfigEnable) == 0) {
        fill_all_ones(data);
        return;
    }
    const auto reg = static_cast<uint16_t>((config_address & 0xfc) + (offset - kDataOffset));
    m_root->config_read(decode_config_address(config_address), reg, data);
}

void PciConfigIoPort::write(uint64_t offset, std::span<const uint8_t> data) {
    if (offset == 0 && data.size() == 4) {
        uint32_t value = 0;
        for (size_t i = 0; i < 4; ++i) value |= uint32_t{data[i]} << (8 * i);
        std::lock_guard lock(m_mutex);
        m_config_address = value & kConfigAddressMask;
        return;
    }
    uint32_t config_address = 0;
    {
        std::lock_guard lock(m_mutex);
        config_address = m_config_address;
    }
    if (offset < kDataOffset || offset + data.size() > kDataOffset + 4 || (config_address & kConfigEnable) == 0) {
        return;
    }
    const auto reg = static_cast<uint16_t>((config_address & 0xfc) + (offset - kDataOffset));
    m_root->config_write(decode_config_address(config_address), reg, data);
}

namespace {

// ECAM offset -> bus 0 function and register (PCIe 5.0 §7.2.2, Table 7-1).
PciAddress decode_ecam(uint64_t offset) {
    return PciAddress{.bus = static_cast<uint8_t>(offset >> 20),
                      .device = static_cast<uint8_t>((offset >> 15) & 0x1f),
                      .function = static_cast<uint8_t>((offset >> 12) & 0x7)};
}

}  // namespace

void PciEcam::read(uint64_t offset, std::span<uint8_t> data) {
    if (offset >= kSize) {
        fill_all_ones(data);
        return;
    }
    m_root->config_read(decode_ecam(offset), static_cast<uint16_t>(offset & 0xfff), data);
}

void PciEcam::write(uint64_t offset, std::span<const uint8_t> data) {
    if (offset >= kSize) return;
    m_root->config_write(decode_ecam(offset), static_cast<uint16_t>(offset & 0xfff), data);
}

}  // namespace keel::pci
