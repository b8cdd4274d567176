#include "pci/pci_config_space.h"

#include <spdlog/spdlog.h>

#include <bit>
#include <string>

#include "common/error.h"

namespace keel::pci {
namespace {

static_assert(std::endian::native == std::endian::little, "config space is little-endian (PCI 3.0 §6.1)");

// Command bits a guest may set (PCI 3.0 §6.2.2): memory space, bus master,
// parity error response, SERR# enable, interrupt disable. keel functions
// have no I/O BARs, so I/O space enable is hardwired to 0; the remaining
// bits are PCI-bus features with no meaning here (hardwired 0, as PCIe does).
constexpr uint32_t kCommandWritable =
    PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE;
// Status error bits are write-1-to-clear (§6.2.3); keel never sets them, but a
// guest clearing them must not flip anything else.
constexpr uint32_t kStatusW1c = PCI_STATUS_PARITY | PCI_STATUS_SIG_TARGET_ABORT | PCI_STATUS_REC_TARGET_ABORT |
                                PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_SIG_SYSTEM_ERROR | PCI_STATUS_DETECTED_PARITY;

using enum RegisterAccess;

// PCI 3.0 Figure 6-1 (type 0 header) and §6.2. BAR masks depend on the
// declared BAR and are set by add_bar(); an undeclared BAR is hardwired to 0,
// which a sizing driver reads as "not implemented" (§6.2.5.1).
// clang-format off
constexpr RegisterInfo kHeaderRegisters[] = {
    // name                  offset                   width access     write mask        w1c
    {"Vendor ID",            PCI_VENDOR_ID,           2, ReadOnly,  0,                0},
    {"Device ID",            PCI_DEVICE_ID,           2, ReadOnly,  0,                0},
    {"Command",              PCI_COMMAND,             2, ReadWrite, kCommandWritable, 0},
    {"Status",               PCI_STATUS,              2, ReadWrite, 0,                kStatusW1c},
    {"Revision ID",          PCI_REVISION_ID,         1, ReadOnly,  0,                0},
    {"Class Code",           PCI_CLASS_PROG,          3, ReadOnly,  0,                0},
    {"Cache Line Size",      PCI_CACHE_LINE_SIZE,     1, ReadWrite, 0xff,             0},
    {"Latency Timer",        PCI_LATENCY_TIMER,       1, ReadOnly,  0,                0},  // hardwired 0, as PCIe
    {"Header Type",          PCI_HEADER_TYPE,         1, ReadOnly,  0,                0},  // 00h: single function
    {"BIST",                 PCI_BIST,                1, ReadOnly,  0,                0},  // not BIST capable
    {"Base Address 0",       PCI_BASE_ADDRESS_0,      4, Bar,       0,                0},
    {"Base Address 1",       PCI_BASE_ADDRESS_1,      4, Bar,       0,                0},
    {"Base Address 2",       PCI_BASE_ADDRESS_2,      4, Bar,       0,                0},
    {"Base Address 3",       PCI_BASE_ADDRESS_3,      4, Bar,       0,                0},
    {"Base Address 4",       PCI_BASE_ADDRESS_4,      4, Bar,       0,                0},
    {"Base Address 5",       PCI_BASE_ADDRESS_5,      4, Bar,       0,                0},
    {"Cardbus CIS Pointer",  PCI_CARDBUS_CIS,         4, ReadOnly,  0,                0},
    {"Subsystem Vendor ID",  PCI_SUBSYSTEM_VENDOR_ID, 2, ReadOnly,  0,                0},
    {"Subsystem ID",         PCI_SUBSYSTEM_ID,        2, ReadOnly,  0,                0},
    {"Expansion ROM Base",   PCI_ROM_ADDRESS,         4, ReadOnly,  0,                0},  // no ROM: sizes to 0
    {"Capabilities Pointer", PCI_CAPABILITY_LIST,     1, ReadOnly,  0,                0},
    {"Reserved",             0x35,                    3, ReadOnly,  0,                0},
    {"Reserved",             0x38,                    4, ReadOnly,  0,                0},
    {"Interrupt Line",       PCI_INTERRUPT_LINE,      1, ReadWrite, 0xff,             0},  // scratch for the OS
    {"Interrupt Pin",        PCI_INTERRUPT_PIN,       1, ReadOnly,  0,                0},
    {"Min_Gnt",              PCI_MIN_GNT,             1, ReadOnly,  0,                0},
    {"Max_Lat",              PCI_MAX_LAT,             1, ReadOnly,  0,                0},
};
// clang-format on

constexpr uint16_t bar_register(uint8_t index) {
    return static_cast<uint16_t>(PCI_BASE_ADDRESS_0 + 4 * index);
}

uint32_t bar_flags(const BarSpec& bar) {
    uint32_t flags = PCI_BASE_ADDRESS_SPACE_MEMORY;
    flags |= bar.kind == BarKind::Memory64 ? PCI_BASE_ADDRESS_MEM_TYPE_64 : PCI_BASE_ADDRESS_MEM_TYPE_32;
    if (bar.prefetchable == Prefetchable::Yes) flags |= PCI_BASE_ADDRESS_MEM_PREFETCH;
    return flags;
}

// The writable bits of the BAR's 64-bit address (32-bit BARs: the low half).
uint64_t bar_address_mask(const BarSpec& bar) {
    const uint64_t mask = ~(bar.size - 1);
    return bar.kind == BarKind::Memory64 ? mask : mask & 0xffff'ffffu;
}

}  // namespace

PciConfigSpace::PciConfigSpace(const PciIdentity& identity) {
    for (const RegisterInfo& reg : kHeaderRegisters) {
        for (uint8_t i = 0; i < reg.width; ++i) {
            m_write_mask[reg.offset + i] = static_cast<uint8_t>(reg.write_mask >> (8 * i));
            m_w1c_mask[reg.offset + i] = static_cast<uint8_t>(reg.w1c_mask >> (8 * i));
        }
    }
    write16(PCI_VENDOR_ID, identity.vendor_id);
    write16(PCI_DEVICE_ID, identity.device_id);
    write8(PCI_REVISION_ID, identity.revision_id);
    write8(PCI_CLASS_PROG, static_cast<uint8_t>(identity.class_code));
    write16(PCI_CLASS_DEVICE, static_cast<uint16_t>(identity.class_code >> 8));
    write16(PCI_SUBSYSTEM_VENDOR_ID, identity.subsystem_vendor_id);
    write16(PCI_SUBSYSTEM_ID, identity.subsystem_id);
}

std::span<const RegisterInfo> PciConfigSpace::header_registers() {
    return kHeaderRegisters;
}

void PciConfigSpace::add_bar(const BarSpec& bar) {
    const bool is64 = bar.kind == BarKind::Memory64;
    if (bar.index >= kBarCount || (is64 && bar.index + 1 >= kBarCount)) {
        throw Error("PCI " + describe() + ": BAR index " + std::to_string(bar.index) + " out of range");
    }
    if (bar.size < 16 || !std::has_single_bit(bar.size) || (!is64 && bar.size > (uint64_t{1} << 31))) {
        throw Error("PCI " + describe() + ": BAR " + std::to_string(bar.index) + " size " + std::to_string(bar.size) +
                    " is not a power of two between 16 bytes and the BAR type's limit");
    }
    auto used = [&](uint8_t index) {
        return m_bars[index].has_value() ||
               (index > 0 && m_bars[index - 1] && m_bars[index - 1]->kind == BarKind::Memory64);
    };
    if (used(bar.index) || (is64 && m_bars[bar.index + 1].has_value())) {
        throw Error("PCI " + describe() + ": BAR " + std::to_string(bar.index) + " declared twice");
    }
    m_bars[bar.index] = bar;
    const uint64_t mask = bar_address_mask(bar);
    const uint16_t reg = bar_register(bar.index);
    for (uint16_t i = 0; i < (is64 ? 8 : 4); ++i) {
        uint8_t byte_mask = static_cast<uint8_t>(mask >> (8 * i));
        if (i == 0) byte_mask &= 0xf0;  // flag bits are read-only
        m_write_mask[reg + i] = byte_mask;
    }
    write32(reg, bar_flags(bar));
    if (is64) write32(static_cast<uint16_t>(reg + 4), 0);
}

std::optional<BarSpec> PciConfigSpace::bar(uint8_t index) const {
    return index < kBarCount ? m_bars[index] : std::nullopt;
}

void PciConfigSpace::set_bar_address(uint8_t index, uint64_t address) {
    const std::optional<BarSpec> spec = bar(index);
    if (!spec) throw Error("PCI " + describe() + ": BAR " + std::to_string(index) + " was never declared");
    if ((address & (spec->size - 1)) != 0 ||
        (spec->kind == BarKind::Memory32 && address + spec->size > (uint64_t{1} << 32))) {
        throw Error("PCI " + describe() + ": BAR " + std::to_string(index) + " address misaligned or out of range");
    }
    m_bar_addresses[index] = address;
    const uint16_t reg = bar_register(index);
    write32(reg, static_cast<uint32_t>(address) | bar_flags(*spec));
    if (spec->kind == BarKind::Memory64) write32(static_cast<uint16_t>(reg + 4), static_cast<uint32_t>(address >> 32));
}

uint64_t PciConfigSpace::bar_address(uint8_t index) const {
    return index < kBarCount ? m_bar_addresses[index] : 0;
}

uint8_t PciConfigSpace::add_capability(std::span<const uint8_t> body, std::span<const uint8_t> write_mask) {
    if (body.size() < 2 || (!write_mask.empty() && write_mask.size() != body.size())) {
        throw Error("PCI " + describe() + ": malformed capability");
    }
    const size_t offset = m_next_capability;
    if (offset + body.size() > kConfigSpaceSize) {
        throw Error("PCI " + describe() + ": no room for another capability in config space");
    }
    for (size_t i = 0; i < body.size(); ++i) {
        m_bytes[offset + i] = body[i];
        // The ID and next pointer are read-only whatever the mask says (§6.7).
        m_write_mask[offset + i] = (i < 2 || write_mask.empty()) ? 0 : write_mask[i];
    }
    const auto cap = static_cast<uint8_t>(offset);
    m_bytes[offset + PCI_CAP_LIST_NEXT] = 0;
    if (m_last_capability == 0) {
        m_bytes[PCI_CAPABILITY_LIST] = cap;
    } else {
        m_bytes[m_last_capability + PCI_CAP_LIST_NEXT] = cap;
    }
    m_last_capability = cap;
    write16(PCI_STATUS, static_cast<uint16_t>(read16(PCI_STATUS) | PCI_STATUS_CAP_LIST));
    // The next capability starts dword aligned (§6.7: the pointers' two low bits are reserved).
    m_next_capability = static_cast<uint16_t>((offset + body.size() + 3) & ~size_t{3});
    return cap;
}

void PciConfigSpace::set_interrupt_pin(InterruptPin pin) {
    write8(PCI_INTERRUPT_PIN, static_cast<uint8_t>(pin));
}

void PciConfigSpace::set_write_mask(uint16_t offset, uint8_t mask) {
    if (offset >= kConfigSpaceSize) throw Error("PCI " + describe() + ": write mask past config space");
    m_write_mask[offset] = mask;
}

void PciConfigSpace::read(uint16_t offset, std::span<uint8_t> data) const {
    for (size_t i = 0; i < data.size(); ++i) {
        const size_t at = size_t{offset} + i;
        data[i] = at < kConfigSpaceSize ? m_bytes[at] : 0;
    }
}

void PciConfigSpace::write(uint16_t offset, std::span<const uint8_t> data) {
    bool bar_touched[kBarCount] = {};
    for (size_t i = 0; i < data.size(); ++i) {
        const size_t at = size_t{offset} + i;
        if (at >= kConfigSpaceSize) break;
        const uint8_t mask = m_write_mask[at];
        uint8_t value = static_cast<uint8_t>((m_bytes[at] & ~mask) | (data[i] & mask));
        value = static_cast<uint8_t>(value & ~(data[i] & m_w1c_mask[at]));
        m_bytes[at] = value;
        if (at >= PCI_BASE_ADDRESS_0 && at < PCI_BASE_ADDRESS_5 + 4) bar_touched[(at - PCI_BASE_ADDRESS_0) / 4] = true;
    }
    for (uint8_t index = 0; index < kBarCount; ++index) {
        if (bar_touched[index]) check_bar_write(index);
    }
}

// A BAR register now holds a value that is neither the size probe (all
// writable bits set) nor the assigned address: the guest tried to move the
// BAR. keel keeps decoding at the assigned address (pci_root.h); say so once.
void PciConfigSpace::check_bar_write(uint8_t reg_index) {
    uint8_t index = reg_index;
    uint32_t shift = 0;
    if (!m_bars[index]) {
        if (index == 0 || !m_bars[index - 1] || m_bars[index - 1]->kind != BarKind::Memory64) return;
        index = static_cast<uint8_t>(index - 1);  // the upper half of a 64-bit BAR
        shift = 32;
    }
    const uint32_t mask = static_cast<uint32_t>(bar_address_mask(*m_bars[index]) >> shift) & (shift ? ~0u : ~0xfu);
    const uint32_t value = read32(bar_register(reg_index)) & mask;
    const uint32_t assigned = static_cast<uint32_t>(m_bar_addresses[index] >> shift) & mask;
    if (value == mask || value == assigned || m_bar_move_logged) return;
    m_bar_move_logged = true;
    spdlog::warn("PCI {}: guest moved BAR {} away from {:#x}; keel keeps decoding it there (BARs are fixed)",
                 describe(), index, m_bar_addresses[index]);
}

uint8_t PciConfigSpace::read8(uint16_t offset) const {
    return offset < kConfigSpaceSize ? m_bytes[offset] : 0;
}

uint16_t PciConfigSpace::read16(uint16_t offset) const {
    return static_cast<uint16_t>(read8(offset) | read8(static_cast<uint16_t>(offset + 1)) << 8);
}

uint32_t PciConfigSpace::read32(uint16_t offset) const {
    return read16(offset) | static_cast<uint32_t>(read16(static_cast<uint16_t>(offset + 2))) << 16;
}

void PciConfigSpace::write8(uint16_t offset, uint8_t value) {
    if (offset < kConfigSpaceSize) m_bytes[offset] = value;
}

void PciConfigSpace::write16(uint16_t offset, uint16_t value) {
    write8(offset, static_cast<uint8_t>(value));
    write8(static_cast<uint16_t>(offset + 1), static_cast<uint8_t>(value >> 8));
}

void PciConfigSpace::write32(uint16_t offset, uint32_t value) {
    write16(offset, static_cast<uint16_t>(value));
    write16(static_cast<uint16_t>(offset + 2), static_cast<uint16_t>(value >> 16));
}

std::string PciConfigSpace::describe() const {
    return fmt::format("{:04x}:{:04x}", read16(PCI_VENDOR_ID), read16(PCI_DEVICE_ID));
}

}  // namespace keel::pci
