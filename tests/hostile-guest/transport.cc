#include "transport.h"

#include <linux/virtio_mmio.h>
#include <linux/virtio_pci.h>

#include "hw.h"

namespace hostile {

// --- virtio-mmio ---

bool MmioTransport::present(uint64_t base) {
    return mmio_read<uint32_t>(base + VIRTIO_MMIO_MAGIC_VALUE) == 0x74726976 &&  // "virt"
           mmio_read<uint32_t>(base + VIRTIO_MMIO_VERSION) == 2;
}

uint32_t MmioTransport::read32(uint32_t offset) const {
    return mmio_read<uint32_t>(m_base + offset);
}
void MmioTransport::write32(uint32_t offset, uint32_t value) const {
    mmio_write<uint32_t>(m_base + offset, value);
}

uint32_t MmioTransport::device_id() {
    return read32(VIRTIO_MMIO_DEVICE_ID);
}
uint8_t MmioTransport::status() {
    return static_cast<uint8_t>(read32(VIRTIO_MMIO_STATUS));
}
void MmioTransport::write_status(uint8_t value) {
    write32(VIRTIO_MMIO_STATUS, value);
}

uint64_t MmioTransport::device_features() {
    write32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    const uint64_t low = read32(VIRTIO_MMIO_DEVICE_FEATURES);
    write32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    return low | (uint64_t{read32(VIRTIO_MMIO_DEVICE_FEATURES)} << 32);
}

void MmioTransport::write_driver_features(uint64_t features) {
    write32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    write32(VIRTIO_MMIO_DRIVER_FEATURES, static_cast<uint32_t>(features));
    write32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    write32(VIRTIO_MMIO_DRIVER_FEATURES, static_cast<uint32_t>(features >> 32));
}

uint64_t MmioTransport::driver_features() {
    write32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    const uint64_t low = read32(VIRTIO_MMIO_DRIVER_FEATURES);
    write32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    return low | (uint64_t{read32(VIRTIO_MMIO_DRIVER_FEATURES)} << 32);
}

void MmioTransport::select_queue(uint16_t index) {
    write32(VIRTIO_MMIO_QUEUE_SEL, index);
}
uint16_t MmioTransport::queue_max() {
    return static_cast<uint16_t>(read32(VIRTIO_MMIO_QUEUE_NUM_MAX));
}
void MmioTransport::write_queue_size(uint16_t size) {
    write32(VIRTIO_MMIO_QUEUE_NUM, size);
}
uint16_t MmioTransport::queue_size() {
    return static_cast<uint16_t>(read32(VIRTIO_MMIO_QUEUE_NUM));
}

void MmioTransport::write_queue_rings(uint64_t desc, uint64_t avail, uint64_t used) {
    write32(VIRTIO_MMIO_QUEUE_DESC_LOW, static_cast<uint32_t>(desc));
    write32(VIRTIO_MMIO_QUEUE_DESC_HIGH, static_cast<uint32_t>(desc >> 32));
    write32(VIRTIO_MMIO_QUEUE_AVAIL_LOW, static_cast<uint32_t>(avail));
    write32(VIRTIO_MMIO_QUEUE_AVAIL_HIGH, static_cast<uint32_t>(avail >> 32));
    write32(VIRTIO_MMIO_QUEUE_USED_LOW, static_cast<uint32_t>(used));
    write32(VIRTIO_MMIO_QUEUE_USED_HIGH, static_cast<uint32_t>(used >> 32));
}

uint64_t MmioTransport::queue_desc() {
    return read32(VIRTIO_MMIO_QUEUE_DESC_LOW) | (uint64_t{read32(VIRTIO_MMIO_QUEUE_DESC_HIGH)} << 32);
}

void MmioTransport::write_queue_ready(uint32_t value) {
    write32(VIRTIO_MMIO_QUEUE_READY, value);
}
bool MmioTransport::queue_ready() {
    return read32(VIRTIO_MMIO_QUEUE_READY) == 1;
}
void MmioTransport::notify(uint16_t queue) {
    write32(VIRTIO_MMIO_QUEUE_NOTIFY, queue);
}
uint8_t MmioTransport::config8(uint32_t offset) {
    return mmio_read<uint8_t>(m_base + VIRTIO_MMIO_CONFIG + offset);
}
void MmioTransport::write_config8(uint32_t offset, uint8_t value) {
    mmio_write<uint8_t>(m_base + VIRTIO_MMIO_CONFIG + offset, value);
}

// --- virtio-pci ---

namespace {

constexpr uint16_t kConfigAddress = 0xCF8;
constexpr uint16_t kConfigData = 0xCFC;
constexpr uint16_t kPciCommand = 0x04;
constexpr uint16_t kPciStatus = 0x06;
constexpr uint16_t kPciBar0 = 0x10;
constexpr uint16_t kPciCapabilityPointer = 0x34;
constexpr uint16_t kStatusCapabilityList = 0x10;
constexpr uint16_t kCommandMemory = 0x2;
constexpr uint16_t kCommandBusMaster = 0x4;
constexpr uint8_t kCapabilityVendor = 0x09;
constexpr uint8_t kCapabilityMsix = 0x11;

uint32_t config_address(uint8_t slot, uint16_t offset) {
    return 0x80000000u | (uint32_t{slot} << 11) | (offset & 0xFCu);
}

}  // namespace

uint32_t PciTransport::config_read32(uint8_t slot, uint16_t offset) {
    outl(kConfigAddress, config_address(slot, offset));
    return inl(kConfigData);
}
void PciTransport::config_write32(uint8_t slot, uint16_t offset, uint32_t value) {
    outl(kConfigAddress, config_address(slot, offset));
    outl(kConfigData, value);
}
uint16_t PciTransport::config_read16(uint8_t slot, uint16_t offset) {
    outl(kConfigAddress, config_address(slot, offset));
    return inw(static_cast<uint16_t>(kConfigData + (offset & 2)));
}
void PciTransport::config_write16(uint8_t slot, uint16_t offset, uint16_t value) {
    outl(kConfigAddress, config_address(slot, offset));
    outw(static_cast<uint16_t>(kConfigData + (offset & 2)), value);
}
uint8_t PciTransport::config_read8(uint8_t slot, uint16_t offset) {
    outl(kConfigAddress, config_address(slot, offset));
    return inb(static_cast<uint16_t>(kConfigData + (offset & 3)));
}

bool PciTransport::init(uint8_t slot) {
    m_slot = slot;
    const uint32_t bar_low = config_read32(slot, kPciBar0);
    const uint32_t bar_high = config_read32(slot, kPciBar0 + 4);
    if ((bar_low & 0x6) != 0x4) return false;  // a 64-bit memory BAR
    m_bar = (uint64_t{bar_high} << 32) | (bar_low & ~0xFu);
    config_write32(slot, kPciBar0, 0xFFFFFFFF);
    const uint32_t size_mask = config_read32(slot, kPciBar0) & ~0xFu;
    config_write32(slot, kPciBar0, bar_low);
    m_bar_size = uint64_t{~size_mask} + 1;
    config_write16(slot, kPciCommand, kCommandMemory | kCommandBusMaster);
    if ((config_read16(slot, kPciStatus) & kStatusCapabilityList) == 0) return false;

    uint8_t cap = config_read8(slot, kPciCapabilityPointer);
    for (int guard = 0; cap != 0 && guard < 48; ++guard) {
        const uint8_t id = config_read8(slot, cap);
        if (id == kCapabilityMsix) {
            m_msix_cap = cap;
            m_msix_entries = static_cast<uint16_t>((config_read16(slot, static_cast<uint16_t>(cap + 2)) & 0x7FF) + 1);
            const uint32_t table = config_read32(slot, static_cast<uint16_t>(cap + 4));
            const uint32_t pba = config_read32(slot, static_cast<uint16_t>(cap + 8));
            m_msix_table = m_bar + (table & ~0x7u);
            m_msix_pba = m_bar + (pba & ~0x7u);
        } else if (id == kCapabilityVendor) {
            const uint8_t type = config_read8(slot, static_cast<uint16_t>(cap + VIRTIO_PCI_CAP_CFG_TYPE));
            const uint32_t offset = config_read32(slot, static_cast<uint16_t>(cap + VIRTIO_PCI_CAP_OFFSET));
            const uint32_t length = config_read32(slot, static_cast<uint16_t>(cap + VIRTIO_PCI_CAP_LENGTH));
            if (type == VIRTIO_PCI_CAP_COMMON_CFG) m_common = m_bar + offset;
            if (type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
                m_notify = m_bar + offset;
                m_notify_multiplier = config_read32(slot, static_cast<uint16_t>(cap + sizeof(virtio_pci_cap)));
            }
            if (type == VIRTIO_PCI_CAP_DEVICE_CFG) {
                m_device_cfg = m_bar + offset;
                m_device_cfg_length = length;
            }
        }
        cap = config_read8(slot, static_cast<uint16_t>(cap + 1));
    }
    return m_common != 0 && m_notify != 0 && m_device_cfg != 0;
}

uint32_t PciTransport::device_id() {
    return (config_read32(m_slot, 0) >> 16) - 0x1040;  // modern device IDs are 0x1040 + virtio ID
}
uint8_t PciTransport::status() {
    return mmio_read<uint8_t>(m_common + VIRTIO_PCI_COMMON_STATUS);
}
void PciTransport::write_status(uint8_t value) {
    mmio_write<uint8_t>(m_common + VIRTIO_PCI_COMMON_STATUS, value);
}

uint64_t PciTransport::device_features() {
    mmio_write<uint32_t>(m_common + VIRTIO_PCI_COMMON_DFSELECT, 0);
    const uint64_t low = mmio_read<uint32_t>(m_common + VIRTIO_PCI_COMMON_DF);
    mmio_write<uint32_t>(m_common + VIRTIO_PCI_COMMON_DFSELECT, 1);
    return low | (uint64_t{mmio_read<uint32_t>(m_common + VIRTIO_PCI_COMMON_DF)} << 32);
}

void PciTransport::write_driver_features(uint64_t features) {
    mmio_write<uint32_t>(m_common + VIRTIO_PCI_COMMON_GFSELECT, 0);
    mmio_write<uint32_t>(m_common + VIRTIO_PCI_COMMON_GF, static_cast<uint32_t>(features));
    mmio_write<uint32_t>(m_common + VIRTIO_PCI_COMMON_GFSELECT, 1);
    mmio_write<uint32_t>(m_common + VIRTIO_PCI_COMMON_GF, static_cast<uint32_t>(features >> 32));
}

uint64_t PciTransport::driver_features() {
    mmio_write<uint32_t>(m_common + VIRTIO_PCI_COMMON_GFSELECT, 0);
    const uint64_t low = mmio_read<uint32_t>(m_common + VIRTIO_PCI_COMMON_GF);
    mmio_write<uint32_t>(m_common + VIRTIO_PCI_COMMON_GFSELECT, 1);
    return low | (uint64_t{mmio_read<uint32_t>(m_common + VIRTIO_PCI_COMMON_GF)} << 32);
}

void PciTransport::select_queue(uint16_t index) {
    mmio_write<uint16_t>(m_common + VIRTIO_PCI_COMMON_Q_SELECT, index);
}

uint16_t PciTransport::queue_max() {
    // PCI has no separate maximum: after a reset queue_size reads it.
    return mmio_read<uint16_t>(m_common + VIRTIO_PCI_COMMON_Q_SIZE);
}
void PciTransport::write_queue_size(uint16_t size) {
    mmio_write<uint16_t>(m_common + VIRTIO_PCI_COMMON_Q_SIZE, size);
}
uint16_t PciTransport::queue_size() {
    return mmio_read<uint16_t>(m_common + VIRTIO_PCI_COMMON_Q_SIZE);
}

void PciTransport::write_queue_rings(uint64_t desc, uint64_t avail, uint64_t used) {
    mmio_write<uint32_t>(m_common + VIRTIO_PCI_COMMON_Q_DESCLO, static_cast<uint32_t>(desc));
    mmio_write<uint32_t>(m_common + VIRTIO_PCI_COMMON_Q_DESCHI, static_cast<uint32_t>(desc >> 32));
    mmio_write<uint32_t>(m_common + VIRTIO_PCI_COMMON_Q_AVAILLO, static_cast<uint32_t>(avail));
    mmio_write<uint32_t>(m_common + VIRTIO_PCI_COMMON_Q_AVAILHI, static_cast<uint32_t>(avail >> 32));
    mmio_write<uint32_t>(m_common + VIRTIO_PCI_COMMON_Q_USEDLO, static_cast<uint32_t>(used));
    mmio_write<uint32_t>(m_common + VIRTIO_PCI_COMMON_Q_USEDHI, static_cast<uint32_t>(used >> 32));
}

uint64_t PciTransport::queue_desc() {
    return mmio_read<uint32_t>(m_common + VIRTIO_PCI_COMMON_Q_DESCLO) |
           (uint64_t{mmio_read<uint32_t>(m_common + VIRTIO_PCI_COMMON_Q_DESCHI)} << 32);
}

void PciTransport::write_queue_ready(uint32_t value) {
    mmio_write<uint16_t>(m_common + VIRTIO_PCI_COMMON_Q_ENABLE, static_cast<uint16_t>(value));
}
bool PciTransport::queue_ready() {
    return mmio_read<uint16_t>(m_common + VIRTIO_PCI_COMMON_Q_ENABLE) == 1;
}

void PciTransport::notify(uint16_t queue) {
    // The notify address of a queue that does not exist is computed as the
    // spec's formula would for it: exactly what a confused driver writes.
    mmio_write<uint16_t>(m_notify + uint64_t{queue} * m_notify_multiplier, queue);
}

uint8_t PciTransport::config8(uint32_t offset) {
    return mmio_read<uint8_t>(m_device_cfg + offset);
}
void PciTransport::write_config8(uint32_t offset, uint8_t value) {
    mmio_write<uint8_t>(m_device_cfg + offset, value);
}

void PciTransport::write_queue_vector(uint16_t vector) {
    mmio_write<uint16_t>(m_common + VIRTIO_PCI_COMMON_Q_MSIX, vector);
}
uint16_t PciTransport::queue_vector() {
    return mmio_read<uint16_t>(m_common + VIRTIO_PCI_COMMON_Q_MSIX);
}
void PciTransport::write_config_vector(uint16_t vector) {
    mmio_write<uint16_t>(m_common + VIRTIO_PCI_COMMON_MSIX, vector);
}
uint16_t PciTransport::config_vector() {
    return mmio_read<uint16_t>(m_common + VIRTIO_PCI_COMMON_MSIX);
}

}  // namespace hostile
