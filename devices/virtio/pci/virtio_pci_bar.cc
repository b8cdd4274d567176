// The virtio-pci BAR (virtio 1.2 §4.1.4): common configuration, ISR status,
// device configuration and notification structures at the offsets of
// VirtioPciLayout, and the MSI-X table and PBA. Reached through the MMIO bus
// and the PCI_CFG window (virtio_pci_transport.cc), on vCPU threads.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "virtio/pci/virtio_pci_transport.h"

namespace keel::virtio {

namespace {

bool inside(uint64_t offset, size_t size, uint64_t start, uint64_t length) {
    return offset >= start && size <= length && offset - start <= length - size;
}

bool natural(uint64_t offset, size_t size) {
    return (size == 1 || size == 2 || size == 4 || size == 8) && offset % size == 0;
}

uint64_t load_le(std::span<const uint8_t> data) {
    uint64_t value = 0;
    std::memcpy(&value, data.data(), std::min(data.size(), sizeof value));  // little-endian host
    return value;
}

void store_le(std::span<uint8_t> data, uint64_t value) {
    std::memcpy(data.data(), &value, std::min(data.size(), sizeof value));
}

}  // namespace

void VirtioPciTransport::bar_read(uint64_t offset, std::span<uint8_t> data) {
    std::ranges::fill(data, uint8_t{0});
    const size_t size = data.size();
    if (m_msix.bar_read(kVirtioPciBar, offset, data)) return;
    if (inside(offset, size, VirtioPciLayout::kCommonOffset, kCommonCfgSize)) {
        common_read(offset - VirtioPciLayout::kCommonOffset, data);
    } else if (inside(offset, size, VirtioPciLayout::kIsrOffset, VirtioPciLayout::kIsrLength)) {
        isr_read(offset - VirtioPciLayout::kIsrOffset, data);
    } else if (inside(offset, size, VirtioPciLayout::kDeviceOffset, VirtioPciLayout::kDeviceLength)) {
        device_access(offset - VirtioPciLayout::kDeviceOffset, data, {});
    } else {
        // The notify structure is write-only; gaps between structures too.
        note_bad_access(offset, size, "read");
    }
}

void VirtioPciTransport::bar_write(uint64_t offset, std::span<const uint8_t> data) {
    const size_t size = data.size();
    if (m_msix.bar_write(kVirtioPciBar, offset, data)) return;
    if (inside(offset, size, VirtioPciLayout::kCommonOffset, kCommonCfgSize)) {
        common_write(offset - VirtioPciLayout::kCommonOffset, data);
    } else if (inside(offset, size, VirtioPciLayout::kDeviceOffset, VirtioPciLayout::kDeviceLength)) {
        device_access(offset - VirtioPciLayout::kDeviceOffset, {}, data);
    } else if (inside(offset, size, VirtioPciLayout::kNotifyOffset, m_layout.notify_length)) {
        notify_write(offset - VirtioPciLayout::kNotifyOffset, data);
    } else {
        // The ISR is read-only (§4.1.4.5); gaps between structures too.
        note_bad_access(offset, size, "write");
    }
}

// --- Common configuration (§4.1.4.3) ---

// An aligned 64-bit access at queue_desc/driver/device (low half) covers the
// whole address; the halves are also rows of kCommonRegisters.
std::optional<QueueAddress> VirtioPciTransport::queue_address_at(uint64_t offset) const {
    switch (offset) {
        case VIRTIO_PCI_COMMON_Q_DESCLO:
            return QueueAddress::Desc;
        case VIRTIO_PCI_COMMON_Q_AVAILLO:
            return QueueAddress::Driver;
        case VIRTIO_PCI_COMMON_Q_USEDLO:
            return QueueAddress::Device;
        default:
            return std::nullopt;
    }
}

void VirtioPciTransport::common_read(uint64_t offset, std::span<uint8_t> data) {
    if (data.size() == 8) {
        const auto which = queue_address_at(offset);
        if (which) {
            store_le(data, m_core.queue_address(*which));
        } else {
            note_bad_access(VirtioPciLayout::kCommonOffset + offset, data.size(), "read");
        }
        return;
    }
    const CommonRegister* reg = find_common_register(offset);
    if (reg == nullptr || reg->width != data.size()) {
        note_bad_access(VirtioPciLayout::kCommonOffset + offset, data.size(), "read");
        return;
    }
    store_le(data, read_register(reg->reg));
}

void VirtioPciTransport::common_write(uint64_t offset, std::span<const uint8_t> data) {
    if (data.size() == 8) {
        const auto which = queue_address_at(offset);
        if (which) {
            m_core.set_queue_address(*which, load_le(data));
        } else {
            note_bad_access(VirtioPciLayout::kCommonOffset + offset, data.size(), "write");
        }
        return;
    }
    const CommonRegister* reg = find_common_register(offset);
    if (reg == nullptr || reg->width != data.size() || reg->access != CommonAccess::ReadWrite) {
        note_bad_access(VirtioPciLayout::kCommonOffset + offset, data.size(), "write");
        return;
    }
    write_register(reg->reg, static_cast<uint32_t>(load_le(data)));
}

uint32_t VirtioPciTransport::read_register(CommonReg reg) const {
    const uint32_t selected = m_core.queue_select();
    const bool queue_exists = selected < m_layout.num_queues;
    switch (reg) {
        case CommonReg::DeviceFeatureSelect:
            return m_core.device_features_select();
        case CommonReg::DeviceFeature:
            return m_core.device_features_window();
        case CommonReg::DriverFeatureSelect:
            return m_core.driver_features_select();
        case CommonReg::DriverFeature:
            return m_core.driver_features_window();
        case CommonReg::ConfigMsixVector:
            return m_config_vector.load(std::memory_order_acquire);
        case CommonReg::NumQueues:
            return m_core.num_queues();
        case CommonReg::DeviceStatus:
            return m_core.status();
        // An 8-bit field (§4.1.4.3): the low byte of the core's counter,
        // which is all a driver compares (vp_generation: ioread8).
        case CommonReg::ConfigGeneration:
            return m_core.config_generation() & 0xff;
        case CommonReg::QueueSelect:
            return selected;
        // 0 for a queue that does not exist: "unavailable" (§4.1.4.3).
        case CommonReg::QueueSize:
            return m_core.queue_size();
        case CommonReg::QueueMsixVector:
            return queue_exists ? m_queue_vectors[selected].load(std::memory_order_acquire) : kNoVector;
        case CommonReg::QueueEnable:
            return m_core.queue_ready() ? 1 : 0;
        case CommonReg::QueueNotifyOff:
            return queue_exists ? selected : 0;
        case CommonReg::QueueDescLo:
            return m_core.queue_address_half(QueueAddress::Desc, AddressHalf::Low);
        case CommonReg::QueueDescHi:
            return m_core.queue_address_half(QueueAddress::Desc, AddressHalf::High);
        case CommonReg::QueueDriverLo:
            return m_core.queue_address_half(QueueAddress::Driver, AddressHalf::Low);
        case CommonReg::QueueDriverHi:
            return m_core.queue_address_half(QueueAddress::Driver, AddressHalf::High);
        case CommonReg::QueueDeviceLo:
            return m_core.queue_address_half(QueueAddress::Device, AddressHalf::Low);
        case CommonReg::QueueDeviceHi:
            return m_core.queue_address_half(QueueAddress::Device, AddressHalf::High);
    }
    return 0;
}

void VirtioPciTransport::write_register(CommonReg reg, uint32_t value) {
    switch (reg) {
        case CommonReg::DeviceFeatureSelect:
            m_core.set_device_features_select(value);
            break;
        case CommonReg::DriverFeatureSelect:
            m_core.set_driver_features_select(value);
            break;
        case CommonReg::DriverFeature:
            m_core.write_driver_features_window(value);
            break;
        case CommonReg::ConfigMsixVector:
            m_config_vector.store(checked_vector(value), std::memory_order_release);
            break;
        case CommonReg::DeviceStatus:
            if (m_core.write_status(static_cast<uint8_t>(value)) == StatusWrite::Reset) reset_vectors();
            break;
        case CommonReg::QueueSelect:
            m_core.set_queue_select(value);
            break;
        case CommonReg::QueueSize:
            m_core.set_queue_size(static_cast<uint16_t>(value));
            break;
        case CommonReg::QueueMsixVector: {
            const uint32_t selected = m_core.queue_select();
            if (selected < m_layout.num_queues) {
                m_queue_vectors[selected].store(checked_vector(value), std::memory_order_release);
            }
            break;
        }
        case CommonReg::QueueEnable:
            m_core.write_queue_ready(value);
            break;
        case CommonReg::QueueDescLo:
            m_core.set_queue_address_half(QueueAddress::Desc, AddressHalf::Low, value);
            break;
        case CommonReg::QueueDescHi:
            m_core.set_queue_address_half(QueueAddress::Desc, AddressHalf::High, value);
            break;
        case CommonReg::QueueDriverLo:
            m_core.set_queue_address_half(QueueAddress::Driver, AddressHalf::Low, value);
            break;
        case CommonReg::QueueDriverHi:
            m_core.set_queue_address_half(QueueAddress::Driver, AddressHalf::High, value);
            break;
        case CommonReg::QueueDeviceLo:
            m_core.set_queue_address_half(QueueAddress::Device, AddressHalf::Low, value);
            break;
        case CommonReg::QueueDeviceHi:
            m_core.set_queue_address_half(QueueAddress::Device, AddressHalf::High, value);
            break;
        // Read-only rows never get here (common_write checks the access).
        case CommonReg::DeviceFeature:
        case CommonReg::NumQueues:
        case CommonReg::ConfigGeneration:
        case CommonReg::QueueNotifyOff:
            break;
    }
}

// §4.1.5.1.2: "Devices MUST report mapping failures by returning the
// NO_VECTOR value when the relevant config_msix_vector/queue_msix_vector
// field is read": a vector beyond the MSI-X table cannot be used.
uint16_t VirtioPciTransport::checked_vector(uint32_t value) const {
    return value < m_layout.msix_vectors ? static_cast<uint16_t>(value) : kNoVector;
}

// --- ISR status (§4.1.4.5): one byte, cleared by a read ---

void VirtioPciTransport::isr_read(uint64_t offset, std::span<uint8_t> data) {
    if (offset != 0 || data.size() != 1) {
        note_bad_access(VirtioPciLayout::kIsrOffset + offset, data.size(), "read");
        return;
    }
    // §4.1.4.5.1: "The device MUST reset ISR status to 0 on driver read."
    data[0] = m_isr.exchange(0, std::memory_order_acq_rel);
}

// --- Device configuration (§4.1.4.6) ---

void VirtioPciTransport::device_access(uint64_t offset, std::span<uint8_t> read_data,
                                       std::span<const uint8_t> write_data) {
    const bool is_read = !read_data.empty();
    const size_t size = is_read ? read_data.size() : write_data.size();
    if (!natural(offset, size)) {
        note_bad_access(VirtioPciLayout::kDeviceOffset + offset, size, is_read ? "read" : "write");
        return;
    }
    if (is_read) {
        m_core.read_config(offset, read_data);
    } else {
        m_core.write_config(offset, write_data);
    }
}

// --- Notifications (§4.1.4.4): the address names the queue ---

void VirtioPciTransport::notify_write(uint64_t offset, std::span<const uint8_t> data) {
    if ((data.size() != 2 && data.size() != 4) || offset % VirtioPciLayout::kNotifyOffMultiplier != 0) {
        note_bad_access(VirtioPciLayout::kNotifyOffset + offset, data.size(), "write");
        return;
    }
    // Without VIRTIO_F_NOTIFICATION_DATA the value is the queue index
    // (§4.1.5.2); the address already identifies the queue, as it does for
    // the ioeventfd, so the value is not checked.
    m_core.notify(static_cast<uint32_t>(offset / VirtioPciLayout::kNotifyOffMultiplier));
}

void VirtioPciTransport::note_bad_access(uint64_t offset, size_t width, const char* access) {
    m_bad_accesses.fetch_add(1, std::memory_order_relaxed);
    if (!m_bad_access_logged.exchange(true, std::memory_order_relaxed)) {
        spdlog::warn("virtio-pci {}: {}-byte {} at BAR offset {:#x} matches no register; ignored (logged once)", m_name,
                     width, access, offset);
    }
}

}  // namespace keel::virtio
