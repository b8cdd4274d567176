#pragma once

// A reusable type-0 PCI configuration header (PCI Local Bus 3.0 §6.1, §6.2):
// identification, command/status, six BAR registers with sizing semantics,
// the capability list (§6.7) and the interrupt pin/line. Every byte has a
// write mask (which bits a guest may change) and a write-1-to-clear mask, so
// a guest write is `value = (old & ~mask) | (new & mask)`, then RW1C bits.
// The layout of the header is the table header_registers() returns, written
// to be diffed against PCI 3.0 Figure 6-1 / §6.2.
//
// Not thread-safe: the owner (a PciDevice) serialises accesses; PciRoot
// already serialises every guest config access (see pci_root.h).

#include <linux/pci_regs.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace keel::pci {

// Conventional config space; a function without a PCI Express capability
// has no extended space, and Linux reads only these 256 bytes of it
// (pci_cfg_space_size()). ECAM offsets [256, 4096) read as zeros.
inline constexpr uint16_t kConfigSpaceSize = PCI_CFG_SPACE_SIZE;
// What an ECAM window gives each function (PCIe 5.0 §7.2.2).
inline constexpr uint16_t kExtendedConfigSpaceSize = PCI_CFG_SPACE_EXP_SIZE;
inline constexpr uint8_t kBarCount = PCI_STD_NUM_BARS;
// Capabilities live after the 64-byte header, dword aligned (§6.7).
inline constexpr uint8_t kFirstCapabilityOffset = PCI_STD_HEADER_SIZEOF;

// Identification registers, all read-only (§6.2.1).
struct PciIdentity {
    uint16_t vendor_id = 0;
    uint16_t device_id = 0;
    uint8_t revision_id = 0;
    uint32_t class_code = 0;  // 24 bits: base class << 16 | sub-class << 8 | programming interface
    uint16_t subsystem_vendor_id = 0;
    uint16_t subsystem_id = 0;
};

// keel has no I/O-space BARs: every BAR is memory (§6.2.5.1).
enum class BarKind : uint8_t { Memory32, Memory64 };
enum class Prefetchable : uint8_t { No, Yes };

// One memory BAR. A 64-bit BAR occupies registers `index` and `index + 1`.
// `size` is a power of two, at least 16 bytes (the BAR's low 4 bits are
// flags); keel also wants at least a 4 KiB page so each BAR maps alone.
struct BarSpec {
    uint8_t index = 0;
    uint64_t size = 0;
    BarKind kind = BarKind::Memory32;
    Prefetchable prefetchable = Prefetchable::No;
};

// INTx pin a function uses (§6.2.4): none, or INTA#..INTD#.
enum class InterruptPin : uint8_t { None = 0, IntA = 1, IntB = 2, IntC = 3, IntD = 4 };

// How a guest may change a register (header_registers()).
enum class RegisterAccess : uint8_t {
    ReadOnly,   // hardwired or set by keel at setup
    ReadWrite,  // some or all bits writable (see write_mask)
    Bar,        // writable address bits, read-only flags; sizing by all-ones (§6.2.5.1)
};

// One row of the declarative header table.
struct RegisterInfo {
    const char* name;
    uint8_t offset;
    uint8_t width;  // bytes
    RegisterAccess access;
    uint32_t write_mask;  // guest-writable bits (BARs: filled per BAR when declared)
    uint32_t w1c_mask;    // write-1-to-clear bits (Status error bits)
};

class PciConfigSpace {
public:
    explicit PciConfigSpace(const PciIdentity& identity);

    // The type-0 header as a table (PCI 3.0 §6.1 Figure 6-1, §6.2).
    [[nodiscard]] static std::span<const RegisterInfo> header_registers();

    // ---- Setup (throws keel::Error on a programming mistake) ----
    // Declares a BAR: the register gets its flag bits and a write mask of
    // ~(size - 1), so writing all-ones reads back the size mask.
    void add_bar(const BarSpec& bar);
    [[nodiscard]] std::optional<BarSpec> bar(uint8_t index) const;
    // Writes the assigned address into the BAR register(s) and remembers it:
    // PciRoot calls it once, before vCPUs run (see PciDevice::bar_assigned).
    void set_bar_address(uint8_t index, uint64_t address);
    [[nodiscard]] uint64_t bar_address(uint8_t index) const;
    // Appends a capability to the list and returns its offset. `body` is the
    // whole capability, starting with its ID byte and the (ignored) next
    // pointer, which this fills in; the status register's capability-list bit
    // and the capabilities pointer (0x34) are set. `write_mask`, when given,
    // has body.size() bytes: the bits a guest may write (default: none).
    uint8_t add_capability(std::span<const uint8_t> body, std::span<const uint8_t> write_mask = {});
    void set_interrupt_pin(InterruptPin pin);
    // The guest-writable mask of bytes the owner adds itself (e.g. a
    // capability whose writable fields the owner intercepts).
    void set_write_mask(uint16_t offset, uint8_t mask);

    // ---- Guest access: any offset/size; bytes past 256 read 0 ----
    void read(uint16_t offset, std::span<uint8_t> data) const;
    void write(uint16_t offset, std::span<const uint8_t> data);

    // ---- Owner access: bypasses the masks ----
    [[nodiscard]] uint8_t read8(uint16_t offset) const;
    [[nodiscard]] uint16_t read16(uint16_t offset) const;
    [[nodiscard]] uint32_t read32(uint16_t offset) const;
    void write8(uint16_t offset, uint8_t value);
    void write16(uint16_t offset, uint16_t value);
    void write32(uint16_t offset, uint32_t value);

    [[nodiscard]] uint16_t command() const { return read16(PCI_COMMAND); }
    [[nodiscard]] std::string describe() const;  // "1af4:1042" for logs

private:
    void check_bar_write(uint8_t index);

    std::array<uint8_t, kConfigSpaceSize> m_bytes{};
    std::array<uint8_t, kConfigSpaceSize> m_write_mask{};
    std::array<uint8_t, kConfigSpaceSize> m_w1c_mask{};
    std::array<std::optional<BarSpec>, kBarCount> m_bars{};
    std::array<uint64_t, kBarCount> m_bar_addresses{};
    uint16_t m_next_capability = kFirstCapabilityOffset;
    uint8_t m_last_capability = 0;  // 0: the list is empty
    bool m_bar_move_logged = false;
};

}  // namespace keel::pci
