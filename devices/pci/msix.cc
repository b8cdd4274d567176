#include "pci/msix.h"

#include <algorithm>
#include <array>
#include <bit>
#include <string>

#include "common/error.h"

namespace keel::pci {
namespace {

static_assert(std::endian::native == std::endian::little, "the MSI-X table and PBA are little-endian");

// Capability layout (PCI 3.0 §6.8.2, Figure 6-10): ID, next, message control,
// table offset/BIR, PBA offset/BIR.
constexpr size_t kCapabilitySize = PCI_MSIX_PBA + 4;
// Message control: enable and function mask are read-write; the table size
// (N - 1) is read-only (§6.8.2.3).
constexpr uint16_t kMessageControlWritable = PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL;

constexpr bool ranges_overlap(uint64_t a, uint64_t a_size, uint64_t b, uint64_t b_size) {
    return a < b + b_size && b < a + a_size;
}

bool contains(uint64_t start, uint64_t size, uint64_t offset) {
    return offset >= start && offset - start < size;
}

}  // namespace

MsixCapability::MsixCapability(const MsixLayout& layout, std::shared_ptr<MsiVectorSink> sink)
    : m_layout(layout),
      m_sink(std::move(sink)),
      m_entries(layout.vector_count),
      m_pending((uint64_t{layout.vector_count} + 63) / 64) {
    const auto fail = [](const std::string& why) { throw Error("MSI-X: " + why); };
    if (!m_sink) fail("no vector sink");
    if (layout.vector_count == 0 || layout.vector_count > kMaxVectors) fail("vector count must be 1..2048");
    if (layout.table_bar >= kBarCount || layout.pba_bar >= kBarCount) fail("table or PBA BAR index out of range");
    if ((layout.table_offset & PCI_MSIX_TABLE_BIR) != 0 || (layout.pba_offset & PCI_MSIX_PBA_BIR) != 0) {
        fail("table and PBA offsets must be 8-byte aligned");
    }
    if (layout.table_bar == layout.pba_bar &&
        ranges_overlap(layout.table_offset, table_size(), layout.pba_offset, pba_size())) {
        fail("table and PBA overlap");
    }
}

uint8_t MsixCapability::add_to(PciConfigSpace& config) {
    if (m_cap_offset != 0) throw Error("MSI-X: capability added twice");
    const auto control = static_cast<uint16_t>(m_layout.vector_count - 1);
    const uint32_t table = m_layout.table_offset | m_layout.table_bar;
    const uint32_t pba = m_layout.pba_offset | m_layout.pba_bar;
    std::array<uint8_t, kCapabilitySize> body{};
    std::array<uint8_t, kCapabilitySize> mask{};
    body[PCI_CAP_LIST_ID] = PCI_CAP_ID_MSIX;
    body[PCI_MSIX_FLAGS] = static_cast<uint8_t>(control);
    body[PCI_MSIX_FLAGS + 1] = static_cast<uint8_t>(control >> 8);
    mask[PCI_MSIX_FLAGS + 1] = static_cast<uint8_t>(kMessageControlWritable >> 8);
    for (size_t i = 0; i < 4; ++i) {
        body[PCI_MSIX_TABLE + i] = static_cast<uint8_t>(table >> (8 * i));
        body[PCI_MSIX_PBA + i] = static_cast<uint8_t>(pba >> (8 * i));
    }
    m_cap_offset = config.add_capability(body, mask);
    return m_cap_offset;
}

void MsixCapability::config_written(const PciConfigSpace& config) {
    if (m_cap_offset == 0) return;
    const uint16_t control = config.read16(static_cast<uint16_t>(m_cap_offset + PCI_MSIX_FLAGS));
    const bool enabled = (control & PCI_MSIX_FLAGS_ENABLE) != 0;
    const bool masked = (control & PCI_MSIX_FLAGS_MASKALL) != 0;
    std::lock_guard lock(m_mutex);
    if (enabled == m_enabled && masked == m_function_masked) return;
    m_enabled = enabled;
    m_function_masked = masked;
    sync_all();
}

void MsixCapability::table_read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_mutex);
    for (size_t i = 0; i < data.size(); ++i) {
        const uint64_t at = offset + i;
        data[i] = 0;
        if (at < offset || at >= table_size()) continue;
        const Entry& entry = m_entries[at / kEntrySize];
        const uint32_t fields[] = {entry.address_lo, entry.address_hi, entry.data, entry.control};
        data[i] = static_cast<uint8_t>(fields[(at % kEntrySize) / 4] >> (8 * (at % 4)));
    }
}

void MsixCapability::table_write(uint64_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(m_mutex);
    uint64_t first = UINT64_MAX;
    uint64_t last = 0;
    for (size_t i = 0; i < data.size(); ++i) {
        const uint64_t at = offset + i;
        if (at < offset || at >= table_size()) continue;
        write_entry_byte(at, data[i]);
        first = std::min(first, at / kEntrySize);
        last = std::max(last, at / kEntrySize);
    }
    for (uint64_t vector = first; vector <= last && first != UINT64_MAX; ++vector) {
        sync_vector(static_cast<uint16_t>(vector));
    }
}

// Reserved bits read as zero: the address's low two bits (DWORD aligned,
// §6.8.2.6) and vector control bits 31:1 (§6.8.2.9).
void MsixCapability::write_entry_byte(uint64_t offset, uint8_t value) {
    Entry& entry = m_entries[offset / kEntrySize];
    const uint64_t field = offset % kEntrySize;
    const uint32_t shift = static_cast<uint32_t>(8 * (field % 4));
    const auto put = [&](uint32_t& word, uint32_t writable) {
        const uint32_t lane = (uint32_t{0xff} << shift) & writable;
        word = (word & ~lane) | ((uint32_t{value} << shift) & lane);
    };
    switch (field / 4) {
        case PCI_MSIX_ENTRY_LOWER_ADDR / 4:
            put(entry.address_lo, ~uint32_t{3});
            break;
        case PCI_MSIX_ENTRY_UPPER_ADDR / 4:
            put(entry.address_hi, ~uint32_t{0});
            break;
        case PCI_MSIX_ENTRY_DATA / 4:
            put(entry.data, ~uint32_t{0});
            break;
        default:
            put(entry.control, PCI_MSIX_ENTRY_CTRL_MASKBIT);
            break;
    }
}

void MsixCapability::pba_read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_mutex);
    for (size_t i = 0; i < data.size(); ++i) {
        const uint64_t at = offset + i;
        const uint64_t word = (at < offset || at >= pba_size()) ? 0 : m_pending[at / 8] >> (8 * (at % 8));
        data[i] = static_cast<uint8_t>(word);
    }
}

// The PBA is read-only (§6.8.2.10): "software should never write".
void MsixCapability::pba_write(uint64_t /*offset*/, std::span<const uint8_t> /*data*/) {}

bool MsixCapability::bar_read(uint8_t bar, uint64_t offset, std::span<uint8_t> data) {
    if (bar == m_layout.table_bar && contains(m_layout.table_offset, table_size(), offset)) {
        table_read(offset - m_layout.table_offset, data);
        return true;
    }
    if (bar == m_layout.pba_bar && contains(m_layout.pba_offset, pba_size(), offset)) {
        pba_read(offset - m_layout.pba_offset, data);
        return true;
    }
    return false;
}

bool MsixCapability::bar_write(uint8_t bar, uint64_t offset, std::span<const uint8_t> data) {
    if (bar == m_layout.table_bar && contains(m_layout.table_offset, table_size(), offset)) {
        table_write(offset - m_layout.table_offset, data);
        return true;
    }
    if (bar == m_layout.pba_bar && contains(m_layout.pba_offset, pba_size(), offset)) {
        pba_write(offset - m_layout.pba_offset, data);
        return true;
    }
    return false;
}

MsixTriggerResult MsixCapability::trigger(uint16_t vector) {
    std::lock_guard lock(m_mutex);
    if (vector >= m_layout.vector_count) return MsixTriggerResult::NoSuchVector;
    if (!m_enabled) return MsixTriggerResult::Disabled;
    if (!deliverable(m_entries[vector])) {
        m_pending[vector / 64] |= uint64_t{1} << (vector % 64);
        return MsixTriggerResult::Pending;
    }
    // Deliverable entries are always configured with their current message
    // (sync_vector runs after every change), so the sink sends the right one.
    m_sink->trigger(vector);
    return MsixTriggerResult::Delivered;
}

bool MsixCapability::enabled() const {
    std::lock_guard lock(m_mutex);
    return m_enabled;
}

bool MsixCapability::function_masked() const {
    std::lock_guard lock(m_mutex);
    return m_function_masked;
}

bool MsixCapability::vector_masked(uint16_t vector) const {
    std::lock_guard lock(m_mutex);
    return vector >= m_layout.vector_count || (m_entries[vector].control & PCI_MSIX_ENTRY_CTRL_MASKBIT) != 0;
}

bool MsixCapability::pending(uint16_t vector) const {
    std::lock_guard lock(m_mutex);
    return vector < m_layout.vector_count && ((m_pending[vector / 64] >> (vector % 64)) & 1) != 0;
}

bool MsixCapability::deliverable(const Entry& entry) const {
    return m_enabled && !m_function_masked && (entry.control & PCI_MSIX_ENTRY_CTRL_MASKBIT) == 0;
}

MsiMessage MsixCapability::message(const Entry& entry) const {
    return MsiMessage{.address = uint64_t{entry.address_hi} << 32 | entry.address_lo, .data = entry.data};
}

void MsixCapability::sync_vector(uint16_t vector) {
    Entry& entry = m_entries[vector];
    if (!deliverable(entry)) return;
    const MsiMessage current = message(entry);
    if (!entry.configured || entry.sent != current) {
        m_sink->configure(vector, current);
        entry.sent = current;
        entry.configured = true;
    }
    uint64_t& word = m_pending[vector / 64];
    const uint64_t bit = uint64_t{1} << (vector % 64);
    if ((word & bit) != 0) {
        // Unmasked with a message pending: send it now (§6.8.2.9).
        word &= ~bit;
        m_sink->trigger(vector);
    }
}

void MsixCapability::sync_all() {
    if (!m_enabled || m_function_masked) return;
    for (uint16_t vector = 0; vector < m_layout.vector_count; ++vector) sync_vector(vector);
}

void MsixBarDevice::read(uint64_t offset, std::span<uint8_t> data) {
    if (!m_msix.bar_read(m_bar, offset, data)) std::fill(data.begin(), data.end(), uint8_t{0});
}

void MsixBarDevice::write(uint64_t offset, std::span<const uint8_t> data) {
    (void)m_msix.bar_write(m_bar, offset, data);
}

}  // namespace keel::pci
