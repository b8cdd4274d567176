#pragma once

// MSI-X (PCI 3.0 §6.8.2): the capability in config space, the vector table
// and the Pending Bit Array in a memory BAR, and delivery through an injected
// MsiVectorSink.
//
// A vector is delivered when MSI-X is enabled, the function is not masked
// (message control) and the vector is not masked (vector control bit 0).
// A trigger while enabled but masked sets the vector's pending bit; the
// message is sent, and the bit cleared, when the vector becomes unmasked
// (§6.8.2.9). The sink learns a vector's message (configure()) when the
// vector becomes deliverable or its message changes while deliverable: Linux
// masks an entry around address/data updates, as §6.8.2.9 requires.
//
// Threading: table and config writes arrive on vCPU threads, trigger() on the
// event loop (or a vCPU thread). One mutex guards all state; sink calls are
// made with it held, so their order is the order of the guest's writes and
// the triggers. Lock order: MsixCapability -> sink (the sink never calls
// back).

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "bus/bus_device.h"
#include "pci/msi.h"
#include "pci/pci_config_space.h"

namespace keel::pci {

// Where the table and PBA live. Both offsets are 8-byte aligned (the low 3
// bits of the capability's offset registers hold the BIR); the table is 16
// bytes per vector, the PBA one bit per vector in 64-bit words.
struct MsixLayout {
    uint16_t vector_count = 1;  // 1..2048 (§6.8.2.3: table size is N-1 in 11 bits)
    uint8_t table_bar = 0;
    uint32_t table_offset = 0;
    uint8_t pba_bar = 0;
    uint32_t pba_offset = 0;
};

enum class MsixTriggerResult : uint8_t {
    Delivered,     // sent to the sink
    Pending,       // masked: pending bit set, sent on unmask
    Disabled,      // MSI-X is off (the function would use INTx)
    NoSuchVector,  // vector >= vector_count: ignored
};

class MsixCapability {
public:
    static constexpr uint16_t kMaxVectors = 2048;
    static constexpr uint64_t kEntrySize = PCI_MSIX_ENTRY_SIZE;

    // Throws keel::Error on a bad layout (count, alignment, BIR, overlap of
    // table and PBA in the same BAR).
    MsixCapability(const MsixLayout& layout, std::shared_ptr<MsiVectorSink> sink);

    [[nodiscard]] static constexpr uint64_t table_size(uint16_t vectors) { return uint64_t{vectors} * kEntrySize; }
    [[nodiscard]] static constexpr uint64_t pba_size(uint16_t vectors) { return (uint64_t{vectors} + 63) / 64 * 8; }
    [[nodiscard]] uint64_t table_size() const { return table_size(m_layout.vector_count); }
    [[nodiscard]] uint64_t pba_size() const { return pba_size(m_layout.vector_count); }
    [[nodiscard]] const MsixLayout& layout() const { return m_layout; }

    // Setup: appends the 12-byte MSI-X capability to `config` (message
    // control's enable and function-mask bits guest-writable) and returns its
    // offset. Call once.
    uint8_t add_to(PciConfigSpace& config);
    // After every guest write to `config` (cheap: rereads message control):
    // picks up enable / function mask changes and delivers pending vectors.
    void config_written(const PciConfigSpace& config);

    // Guest accesses, offsets relative to the table / PBA start. The spec
    // allows aligned dword and qword accesses only (§6.8.2); others are
    // served bytewise, which is at least harmless. The PBA is read-only.
    void table_read(uint64_t offset, std::span<uint8_t> data);
    void table_write(uint64_t offset, std::span<const uint8_t> data);
    void pba_read(uint64_t offset, std::span<uint8_t> data);
    void pba_write(uint64_t offset, std::span<const uint8_t> data);
    // Dispatch of an access anywhere in BAR `bar`: returns false when it does
    // not touch this table or PBA (so a composite BAR device can try others).
    bool bar_read(uint8_t bar, uint64_t offset, std::span<uint8_t> data);
    bool bar_write(uint8_t bar, uint64_t offset, std::span<const uint8_t> data);

    // Fire `vector` (event loop or vCPU thread).
    MsixTriggerResult trigger(uint16_t vector);

    [[nodiscard]] bool enabled() const;
    [[nodiscard]] bool function_masked() const;
    [[nodiscard]] bool vector_masked(uint16_t vector) const;
    [[nodiscard]] bool pending(uint16_t vector) const;

private:
    struct Entry {
        uint32_t address_lo = 0;
        uint32_t address_hi = 0;
        uint32_t data = 0;
        uint32_t control = PCI_MSIX_ENTRY_CTRL_MASKBIT;  // masked at reset (§6.8.2.9)
        bool configured = false;                         // the sink has `sent`
        MsiMessage sent;
    };

    [[nodiscard]] bool deliverable(const Entry& entry) const;
    [[nodiscard]] MsiMessage message(const Entry& entry) const;
    void write_entry_byte(uint64_t offset, uint8_t value);
    // Called with m_mutex held after any state change: configures and sends
    // what became deliverable.
    void sync_vector(uint16_t vector);
    void sync_all();

    MsixLayout m_layout;
    std::shared_ptr<MsiVectorSink> m_sink;
    uint8_t m_cap_offset = 0;
    mutable std::mutex m_mutex;
    bool m_enabled = false;
    bool m_function_masked = false;
    std::vector<Entry> m_entries;
    std::vector<uint64_t> m_pending;  // the PBA
};

// A BusDevice for a BAR that holds only an MSI-X table and/or PBA; other
// offsets read as zeros and ignore writes.
class MsixBarDevice final : public BusDevice {
public:
    MsixBarDevice(MsixCapability& msix, uint8_t bar) : m_msix(msix), m_bar(bar) {}
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

private:
    MsixCapability& m_msix;
    uint8_t m_bar;
};

}  // namespace keel::pci
