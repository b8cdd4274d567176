// Setup, PCI config space (capabilities, the PCI_CFG window) and interrupt
// delivery of the virtio-pci transport. The BAR's registers are in
// virtio_pci_bar.cc.

#include "virtio/pci/virtio_pci_transport.h"

#include <linux/pci_regs.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>
#include <spdlog/spdlog.h>

#include <array>
#include <bit>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>

#include "common/error.h"

namespace keel::virtio {

static_assert(std::endian::native == std::endian::little,
              "virtio-pci structures and PCI config space are little-endian, and so is the host");

namespace {

// ISR status bits (§4.1.4.5): bit 0 queue interrupt, bit 1 device
// configuration interrupt (the UAPI names only the latter).
constexpr uint8_t kIsrQueue = 0x1;
constexpr uint8_t kIsrConfig = VIRTIO_PCI_ISR_CONFIG;

// Offsets inside struct virtio_pci_cfg_cap of the fields a driver writes.
constexpr uint8_t kCfgCapBar = offsetof(virtio_pci_cfg_cap, cap.bar);
constexpr uint8_t kCfgCapOffset = offsetof(virtio_pci_cfg_cap, cap.offset);
constexpr uint8_t kCfgCapLength = offsetof(virtio_pci_cfg_cap, cap.length);
constexpr uint8_t kCfgCapData = offsetof(virtio_pci_cfg_cap, pci_cfg_data);
constexpr uint8_t kCfgCapDataSize = sizeof(virtio_pci_cfg_cap::pci_cfg_data);

template <typename T>
std::array<uint8_t, sizeof(T)> bytes_of(const T& value) {
    std::array<uint8_t, sizeof(T)> out{};
    std::memcpy(out.data(), &value, sizeof(T));
    return out;
}

virtio_pci_cap make_cap(uint8_t cfg_type, uint8_t length, uint32_t offset, uint32_t structure_length) {
    virtio_pci_cap cap{};
    cap.cap_vndr = PCI_CAP_ID_VNDR;
    cap.cap_len = length;
    cap.cfg_type = cfg_type;
    cap.bar = kVirtioPciBar;
    cap.offset = offset;
    cap.length = structure_length;
    return cap;
}

bool ranges_overlap(uint64_t a, uint64_t a_size, uint64_t b, uint64_t b_size) {
    return a < b + b_size && b < a + a_size;
}

uint64_t round_up_page(uint64_t value) {
    return (value + kVirtioPciPage - 1) / kVirtioPciPage * kVirtioPciPage;
}

}  // namespace

// --- Identity and layout (virtio_pci_layout.h) ---

uint32_t virtio_pci_class_code(uint32_t device_type) {
    switch (device_type) {
        case VIRTIO_ID_BLOCK:
            return 0x01'00'00;
        case VIRTIO_ID_NET:
            return 0x02'00'00;
        case VIRTIO_ID_CONSOLE:
            return 0x07'80'00;
        default:
            return 0x00'ff'00;
    }
}

pci::PciIdentity virtio_pci_identity(uint32_t device_type) {
    const auto device_id = static_cast<uint16_t>(kVirtioPciModernDeviceBase + device_type);
    return pci::PciIdentity{
        .vendor_id = kVirtioPciVendor,
        .device_id = device_id,
        .revision_id = kVirtioPciRevision,
        .class_code = virtio_pci_class_code(device_type),
        .subsystem_vendor_id = kVirtioPciVendor,
        .subsystem_id = device_id,
    };
}

VirtioPciLayout VirtioPciLayout::for_queues(size_t num_queues) {
    if (num_queues == 0 || num_queues >= pci::MsixCapability::kMaxVectors) {
        throw Error("virtio-pci: " + std::to_string(num_queues) +
                    " queues; MSI-X allows 1 to 2047 (a vector per queue plus one for config changes)");
    }
    VirtioPciLayout layout;
    layout.num_queues = static_cast<uint16_t>(num_queues);
    layout.msix_vectors = static_cast<uint16_t>(num_queues + 1);
    layout.notify_length = uint32_t{layout.num_queues} * kNotifyOffMultiplier;
    const uint64_t table = kNotifyOffset + round_up_page(layout.notify_length);
    const uint64_t pba = table + round_up_page(pci::MsixCapability::table_size(layout.msix_vectors));
    const uint64_t end = pba + round_up_page(pci::MsixCapability::pba_size(layout.msix_vectors));
    layout.msix_table_offset = static_cast<uint32_t>(table);
    layout.msix_pba_offset = static_cast<uint32_t>(pba);
    layout.bar_size = std::bit_ceil(end);
    return layout;
}

// --- Construction ---

uint16_t VirtioPciTransport::msix_vector_count(const VirtioDevice& device) {
    return VirtioPciLayout::for_queues(device.queue_max_sizes().size()).msix_vectors;
}

VirtioPciTransport::VirtioPciTransport(std::shared_ptr<VirtioDevice> device, const GuestMemory& memory,
                                       EventRegistry& events, std::shared_ptr<pci::MsiVectorSink> msi, std::string name)
    : m_name(std::move(name)),
      m_core(std::move(device), memory, events, *this),
      m_layout(VirtioPciLayout::for_queues(m_core.num_queues())),
      m_msix(pci::MsixLayout{.vector_count = m_layout.msix_vectors,
                             .table_bar = kVirtioPciBar,
                             .table_offset = m_layout.msix_table_offset,
                             .pba_bar = kVirtioPciBar,
                             .pba_offset = m_layout.msix_pba_offset},
             std::move(msi)),
      m_config(virtio_pci_identity(m_core.device().device_type())),
      m_queue_vectors(std::make_unique<std::atomic<uint16_t>[]>(m_layout.num_queues)) {
    reset_vectors();
    m_config.add_bar(pci::BarSpec{.index = kVirtioPciBar,
                                  .size = m_layout.bar_size,
                                  .kind = pci::BarKind::Memory64,
                                  .prefetchable = pci::Prefetchable::No});
    // MSI-X only: no INTx pin, so the OS never routes a legacy interrupt.
    m_config.set_interrupt_pin(pci::InterruptPin::None);
    add_capabilities();
}

// The vendor-specific capabilities of §4.1.4, then MSI-X. Linux walks the
// list (virtio_pci_find_capability) and takes the first of each cfg_type.
void VirtioPciTransport::add_capabilities() {
    add_virtio_capability(VIRTIO_PCI_CAP_COMMON_CFG, VirtioPciLayout::kCommonOffset, kCommonCfgSize);

    virtio_pci_notify_cap notify{};
    notify.cap =
        make_cap(VIRTIO_PCI_CAP_NOTIFY_CFG, sizeof notify, VirtioPciLayout::kNotifyOffset, m_layout.notify_length);
    notify.notify_off_multiplier = VirtioPciLayout::kNotifyOffMultiplier;
    m_config.add_capability(bytes_of(notify));

    add_virtio_capability(VIRTIO_PCI_CAP_ISR_CFG, VirtioPciLayout::kIsrOffset, VirtioPciLayout::kIsrLength);
    add_virtio_capability(VIRTIO_PCI_CAP_DEVICE_CFG, VirtioPciLayout::kDeviceOffset, VirtioPciLayout::kDeviceLength);

    // §4.1.4.9: the driver selects bar/offset/length and accesses
    // pci_cfg_data; those fields are writable, the rest of the capability not.
    virtio_pci_cfg_cap window{};
    window.cap = make_cap(VIRTIO_PCI_CAP_PCI_CFG, sizeof window, 0, 0);
    std::array<uint8_t, sizeof window> mask{};
    mask[kCfgCapBar] = 0xff;
    for (uint8_t i = 0; i < 4; ++i) {
        mask[kCfgCapOffset + i] = 0xff;
        mask[kCfgCapLength + i] = 0xff;
        mask[kCfgCapData + i] = 0xff;
    }
    m_pci_cfg_cap = m_config.add_capability(bytes_of(window), mask);

    m_msix.add_to(m_config);
}

uint8_t VirtioPciTransport::add_virtio_capability(uint8_t cfg_type, uint32_t offset, uint32_t length) {
    return m_config.add_capability(bytes_of(make_cap(cfg_type, sizeof(virtio_pci_cap), offset, length)));
}

// --- PCI function ---

void VirtioPciTransport::config_read(uint16_t offset, std::span<uint8_t> data) {
    if (touches_window(offset, data.size())) window_read();
    m_config.read(offset, data);
}

void VirtioPciTransport::config_write(uint16_t offset, std::span<const uint8_t> data) {
    m_config.write(offset, data);
    m_msix.config_written(m_config);
    if (touches_window(offset, data.size())) window_write();
}

std::vector<pci::BarRegion> VirtioPciTransport::bar_regions() {
    const std::shared_ptr<VirtioPciTransport> self = weak_from_this().lock();
    if (!self) throw Error("virtio-pci " + m_name + ": the transport must be owned by a std::shared_ptr");
    // Aliasing: the bus holds the transport alive through its BAR device.
    std::shared_ptr<BusDevice> bar(self, &m_bar_device);
    return {pci::BarRegion{.spec = *m_config.bar(kVirtioPciBar), .device = std::move(bar)}};
}

void VirtioPciTransport::bar_assigned(uint8_t index, uint64_t address) {
    if (index != kVirtioPciBar) {
        throw Error("virtio-pci " + m_name + ": BAR " + std::to_string(index) + " assigned, but only BAR " +
                    std::to_string(kVirtioPciBar) + " exists");
    }
    m_config.set_bar_address(index, address);
    m_bar_address = Gpa{address};
}

std::vector<IoEventSpec> VirtioPciTransport::ioevents() const {
    std::vector<IoEventSpec> specs;
    if (!m_bar_address) return specs;
    const std::span<const int> fds = m_core.kick_fds();
    for (uint16_t queue = 0; queue < m_layout.num_queues; ++queue) {
        // vp_notify writes the queue index with iowrite16: a 2-byte write.
        specs.push_back(IoEventSpec{.address = m_bar_address->unchecked_add(m_layout.notify_address_offset(queue)),
                                    .length = 2,
                                    .datamatch = std::nullopt,
                                    .fd = fds[queue]});
    }
    return specs;
}

std::vector<DeviceCounter> VirtioPciTransport::counters() const {
    std::vector<DeviceCounter> result = m_core.counters();
    result.emplace_back("bad_accesses", m_bad_accesses.load(std::memory_order_relaxed));
    result.emplace_back("interrupts_dropped", m_interrupts_dropped.load(std::memory_order_relaxed));
    return result;
}

// --- PCI_CFG window (§4.1.4.9) ---

bool VirtioPciTransport::touches_window(uint16_t offset, size_t size) const {
    return ranges_overlap(offset, size, uint64_t{m_pci_cfg_cap} + kCfgCapData, kCfgCapDataSize);
}

// The BAR offset and width the driver selected, when usable: the virtio BAR,
// a width of 1, 2 or 4 (the size of pci_cfg_data), naturally aligned
// (§4.1.4.9.2: "all accesses MUST be aligned") and inside the BAR.
std::optional<std::pair<uint32_t, uint32_t>> VirtioPciTransport::window_target() {
    const uint8_t bar = m_config.read8(static_cast<uint16_t>(m_pci_cfg_cap + kCfgCapBar));
    const uint32_t offset = m_config.read32(static_cast<uint16_t>(m_pci_cfg_cap + kCfgCapOffset));
    const uint32_t length = m_config.read32(static_cast<uint16_t>(m_pci_cfg_cap + kCfgCapLength));
    const bool width_ok = length == 1 || length == 2 || length == 4;
    if (bar == kVirtioPciBar && width_ok && offset % length == 0 && uint64_t{offset} + length <= m_layout.bar_size) {
        return std::pair{offset, length};
    }
    if (!m_window_logged.exchange(true, std::memory_order_relaxed)) {
        spdlog::warn("virtio-pci {}: PCI_CFG window access with bar {} offset {:#x} length {}; ignored", m_name, bar,
                     offset, length);
    }
    m_bad_accesses.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
}

// "Upon detecting driver read access to pci_cfg_data, the device MUST
// execute a read access of length cap.length at offset cap.offset at BAR
// selected by cap.bar and store the first cap.length bytes in pci_cfg_data."
// An unusable selection reads zeros.
void VirtioPciTransport::window_read() {
    std::array<uint8_t, kCfgCapDataSize> bytes{};
    if (const auto target = window_target()) bar_read(target->first, std::span(bytes).first(target->second));
    for (uint8_t i = 0; i < kCfgCapDataSize; ++i) {
        m_config.write8(static_cast<uint16_t>(m_pci_cfg_cap + kCfgCapData + i), bytes[i]);
    }
}

// "Upon detecting driver write access to pci_cfg_data, the device MUST
// execute a write access at offset cap.offset at BAR selected by cap.bar
// using the first cap.length bytes from pci_cfg_data."
void VirtioPciTransport::window_write() {
    const auto target = window_target();
    if (!target) return;
    std::array<uint8_t, kCfgCapDataSize> bytes{};
    for (uint8_t i = 0; i < kCfgCapDataSize; ++i) {
        bytes[i] = m_config.read8(static_cast<uint16_t>(m_pci_cfg_cap + kCfgCapData + i));
    }
    bar_write(target->first, std::span<const uint8_t>(bytes).first(target->second));
}

// --- Notifications ---

void VirtioPciTransport::signal_used_queue(uint16_t index) {
    if (index >= m_layout.num_queues) return;
    raise(kIsrQueue, m_queue_vectors[index].load(std::memory_order_acquire));
}

void VirtioPciTransport::signal_config_change() {
    // §2.5.1: the generation changes whenever the config space may have.
    m_core.bump_config_generation();
    raise(kIsrConfig, m_config_vector.load(std::memory_order_acquire));
}

// §2.1.2: after setting DEVICE_NEEDS_RESET the device sends a configuration
// change notification. The config space did not change: no generation bump.
void VirtioPciTransport::set_needs_reset() {
    if (m_core.mark_needs_reset()) raise(kIsrConfig, m_config_vector.load(std::memory_order_acquire));
}

// §4.1.4.5.1: the ISR bit is set before the notification is sent. With
// MSI-X enabled Linux never reads the ISR; it is kept anyway (the spec does
// not forbid it, and it shows in tests what was signalled).
void VirtioPciTransport::raise(uint8_t isr_bits, uint16_t vector) {
    m_isr.fetch_or(isr_bits, std::memory_order_acq_rel);
    if (vector == kNoVector) {
        // §4.1.5.1.2: the driver unmapped this event type, which disables
        // its interrupts.
        return;
    }
    switch (m_msix.trigger(vector)) {
        case pci::MsixTriggerResult::Delivered:
        case pci::MsixTriggerResult::Pending:
            m_core.count_interrupt();
            break;
        case pci::MsixTriggerResult::Disabled:
        case pci::MsixTriggerResult::NoSuchVector:
            m_interrupts_dropped.fetch_add(1, std::memory_order_relaxed);
            break;
    }
}

// §4.1.5.1.2: "The device MUST have all queue and configuration change
// events unmapped upon reset." The MSI-X table itself is PCI state and stays.
void VirtioPciTransport::reset_vectors() {
    m_config_vector.store(kNoVector, std::memory_order_release);
    for (uint16_t q = 0; q < m_layout.num_queues; ++q) m_queue_vectors[q].store(kNoVector, std::memory_order_release);
    m_isr.store(0, std::memory_order_release);
}

}  // namespace keel::virtio
