#include "virtio/mmio_transport.h"

#include <linux/virtio_mmio.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <sstream>
#include <utility>

namespace keel::virtio {

// Registers are little-endian (§4.2.2); keel copies them to and from the
// access buffer with memcpy, which is only right on a little-endian host.
static_assert(std::endian::native == std::endian::little, "virtio-mmio registers are little-endian");

namespace {

constexpr uint64_t kConfigBase = VIRTIO_MMIO_CONFIG;
constexpr uint32_t kRegisterWidth = 4;

// §4.2.2.2: config-space fields are accessed with their natural width and
// alignment; 64-bit fields may be read as two 32-bit halves, and keel also
// takes one aligned 64-bit access (split below).
bool config_access_ok(uint64_t offset, size_t width) {
    if (width != 1 && width != 2 && width != 4 && width != 8) return false;
    return offset % width == 0 && offset >= kConfigBase && offset + width <= kMmioWindowSize;
}

std::string memparse_size(uint64_t size) {
    constexpr uint64_t kKiB = 1024;
    if (size != 0 && size % (kKiB * kKiB) == 0) return std::to_string(size / (kKiB * kKiB)) + "M";
    if (size != 0 && size % kKiB == 0) return std::to_string(size / kKiB) + "K";
    return std::to_string(size);
}

}  // namespace

std::string virtio_mmio_cmdline_parameter(Gpa base, uint64_t size, uint32_t irq) {
    std::ostringstream out;
    out << "virtio_mmio.device=" << memparse_size(size) << "@0x" << std::hex << base.value << std::dec << ':' << irq;
    return out.str();
}

VirtioMmioTransport::VirtioMmioTransport(std::shared_ptr<VirtioDevice> device, const GuestMemory& memory,
                                         EventRegistry& events, std::shared_ptr<InterruptLine> irq, MmioSlot slot)
    : m_irq(std::move(irq)), m_slot(slot), m_core(std::move(device), memory, events, *this) {
    if (m_irq) m_irq->set_level_source([this] { return interrupt_status() != 0; });
}

VirtioMmioTransport::~VirtioMmioTransport() {
    // The line may outlive this transport (it is shared); its level source must not.
    if (m_irq) m_irq->set_level_source(nullptr);
}

void VirtioMmioTransport::read(uint64_t offset, std::span<uint8_t> data) {
    if (offset >= kConfigBase) {
        read_config(offset, data);
        return;
    }
    const MmioRegister* reg = find_mmio_register(offset);
    if (reg == nullptr || data.size() != kRegisterWidth || !mmio_readable(*reg)) {
        std::fill(data.begin(), data.end(), uint8_t{0});
        note_bad_access(offset, data.size(), "read");
        return;
    }
    const uint32_t value = read_register(reg->reg);
    std::memcpy(data.data(), &value, sizeof value);
}

void VirtioMmioTransport::write(uint64_t offset, std::span<const uint8_t> data) {
    if (offset >= kConfigBase) {
        write_config(offset, data);
        return;
    }
    const MmioRegister* reg = find_mmio_register(offset);
    if (reg == nullptr || data.size() != kRegisterWidth || !mmio_writable(*reg)) {
        note_bad_access(offset, data.size(), "write");
        return;
    }
    uint32_t value = 0;
    std::memcpy(&value, data.data(), sizeof value);
    write_register(reg->reg, value);
}

uint32_t VirtioMmioTransport::read_register(MmioReg reg) const {
    switch (reg) {
        case MmioReg::MagicValue:
            return kMmioMagic;
        case MmioReg::Version:
            return kMmioVersion;
        case MmioReg::DeviceId:
            return m_core.device().device_type();
        case MmioReg::VendorId:
            return kKeelVendorId;
        case MmioReg::DeviceFeatures:
            return m_core.device_features_window();
        case MmioReg::QueueNumMax:
            return m_core.queue_max_size();
        case MmioReg::QueueReady:
            return m_core.queue_ready() ? 1 : 0;
        case MmioReg::InterruptStatus:
            return interrupt_status();
        case MmioReg::Status:
            return m_core.status();
        case MmioReg::ShmLenLow:
        case MmioReg::ShmLenHigh:
        case MmioReg::ShmBaseLow:
        case MmioReg::ShmBaseHigh:
            return kNoShmRegion;
        case MmioReg::ConfigGeneration:
            return m_core.config_generation();
        default:
            return 0;  // write-only: filtered out by the table before
    }
}

void VirtioMmioTransport::write_register(MmioReg reg, uint32_t value) {
    switch (reg) {
        case MmioReg::DeviceFeaturesSel:
            m_core.set_device_features_select(value);
            break;
        case MmioReg::DriverFeatures:
            m_core.write_driver_features_window(value);
            break;
        case MmioReg::DriverFeaturesSel:
            m_core.set_driver_features_select(value);
            break;
        case MmioReg::QueueSel:
            m_core.set_queue_select(value);
            break;
        // A size that does not fit 16 bits becomes 0, which activation rejects
        // (truncating could turn garbage into a valid size).
        case MmioReg::QueueNum:
            m_core.set_queue_size(value > 0xffff ? 0 : static_cast<uint16_t>(value));
            break;
        case MmioReg::QueueReady:
            m_core.write_queue_ready(value);
            break;
        case MmioReg::QueueNotify:
            m_core.notify(value);
            break;
        case MmioReg::InterruptAck:
            m_interrupt_status.fetch_and(~value, std::memory_order_acq_rel);
            break;
        case MmioReg::Status:
            // Only the low byte is defined; a wider value is a driver bug, and
            // truncating 0x100 to 0 would reset the device.
            if (value > 0xff) {
                note_bad_access(VIRTIO_MMIO_STATUS, kRegisterWidth, "status write");
            } else if (m_core.write_status(static_cast<uint8_t>(value)) == StatusWrite::Reset) {
                m_interrupt_status.store(0, std::memory_order_release);
            }
            break;
        case MmioReg::QueueDescLow:
            m_core.set_queue_address_half(QueueAddress::Desc, AddressHalf::Low, value);
            break;
        case MmioReg::QueueDescHigh:
            m_core.set_queue_address_half(QueueAddress::Desc, AddressHalf::High, value);
            break;
        case MmioReg::QueueDriverLow:
            m_core.set_queue_address_half(QueueAddress::Driver, AddressHalf::Low, value);
            break;
        case MmioReg::QueueDriverHigh:
            m_core.set_queue_address_half(QueueAddress::Driver, AddressHalf::High, value);
            break;
        case MmioReg::QueueDeviceLow:
            m_core.set_queue_address_half(QueueAddress::Device, AddressHalf::Low, value);
            break;
        case MmioReg::QueueDeviceHigh:
            m_core.set_queue_address_half(QueueAddress::Device, AddressHalf::High, value);
            break;
        case MmioReg::ShmSel:
            break;  // no shared memory regions: every ID is unused
        default:
            break;  // read-only: filtered out by the table before
    }
}

void VirtioMmioTransport::read_config(uint64_t offset, std::span<uint8_t> data) const {
    if (!config_access_ok(offset, data.size())) {
        std::fill(data.begin(), data.end(), uint8_t{0});
        note_bad_access(offset, data.size(), "config read");
        return;
    }
    const uint64_t config_offset = offset - kConfigBase;
    if (data.size() == 8) {
        m_core.read_config(config_offset, data.first(4));
        m_core.read_config(config_offset + 4, data.subspan(4));
        return;
    }
    m_core.read_config(config_offset, data);
}

void VirtioMmioTransport::write_config(uint64_t offset, std::span<const uint8_t> data) {
    if (!config_access_ok(offset, data.size())) {
        note_bad_access(offset, data.size(), "config write");
        return;
    }
    const uint64_t config_offset = offset - kConfigBase;
    if (data.size() == 8) {
        m_core.write_config(config_offset, data.first(4));
        m_core.write_config(config_offset + 4, data.subspan(4));
        return;
    }
    m_core.write_config(config_offset, data);
}

// --- VirtioNotifier ---

void VirtioMmioTransport::raise(uint32_t bits) {
    // Set the cause before the edge, so the driver's handler sees it (§4.2.3.4).
    const uint32_t before = m_interrupt_status.fetch_or(bits, std::memory_order_acq_rel);
    // The line's level is "InterruptStatus is not 0": only a bit that was
    // clear raises it (a level line re-raises itself at the guest's EOI while
    // a bit is still set). While a bit is set the driver has not acknowledged
    // it, and its handler reads InterruptStatus, acknowledges, and only then
    // looks at the rings, so it sees everything published before this call.
    // Another edge would only run the handler once more (two exits to keel)
    // for nothing: Linux's handler is the same for every queue of the device.
    if ((before & bits) == bits) {
        m_merged_interrupts.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    m_core.count_interrupt();
    if (m_irq) m_irq->trigger();
}

void VirtioMmioTransport::signal_used_queue(uint16_t /*index*/) {
    raise(VIRTIO_MMIO_INT_VRING);
}

void VirtioMmioTransport::signal_config_change() {
    // §2.5.1: the generation changes whenever the config space may have.
    m_core.bump_config_generation();
    raise(VIRTIO_MMIO_INT_CONFIG);
}

void VirtioMmioTransport::set_needs_reset() {
    // §2.1.2: the device SHOULD send a configuration change notification.
    if (m_core.mark_needs_reset()) raise(VIRTIO_MMIO_INT_CONFIG);
}

// --- Wiring and statistics ---

std::vector<IoEventSpec> VirtioMmioTransport::ioevents() const {
    std::vector<IoEventSpec> specs;
    const auto fds = m_core.kick_fds();
    for (size_t i = 0; i < fds.size(); ++i) {
        specs.push_back(IoEventSpec{m_slot.base.unchecked_add(VIRTIO_MMIO_QUEUE_NOTIFY), kRegisterWidth, i, fds[i]});
    }
    return specs;
}

std::string VirtioMmioTransport::kernel_cmdline_parameter() const {
    return virtio_mmio_cmdline_parameter(m_slot.base, kMmioWindowSize, m_slot.irq);
}

std::vector<DeviceCounter> VirtioMmioTransport::counters() const {
    std::vector<DeviceCounter> result = m_core.counters();
    result.emplace_back("bad_accesses", m_bad_accesses.load(std::memory_order_relaxed));
    result.emplace_back("interrupts_merged", m_merged_interrupts.load(std::memory_order_relaxed));
    return result;
}

void VirtioMmioTransport::note_bad_access(uint64_t offset, size_t width, const char* access) const {
    // A guest can repeat a bad access at will: count every one, log the first.
    if (m_bad_accesses.fetch_add(1, std::memory_order_relaxed) == 0) {
        spdlog::warn("virtio-mmio {}: bad {} of {} bytes at offset {:#x}; reads 0, writes ignored",
                     m_core.device().name(), access, width, offset);
    }
}

}  // namespace keel::virtio
