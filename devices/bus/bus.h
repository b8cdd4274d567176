#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bus/bus_device.h"

namespace keel {

enum class BusKind { Pio, Mmio };

// Maps address ranges to devices. Filled during setup, immutable once vCPUs
// run, so dispatch takes no lock.
class Bus {
public:
    struct Entry {
        uint64_t base = 0;
        uint64_t length = 0;
        std::string name;
        std::shared_ptr<BusDevice> device;
    };

    explicit Bus(BusKind kind) : m_kind(kind) {}

    // Throws keel::Error on zero length, address overflow or overlap.
    void insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t length, std::string name);

    // Returns false when no device claims [addr, addr + size): reads then see
    // zeros. Unclaimed accesses are counted, never fatal.
    bool read(uint64_t addr, std::span<uint8_t> data) const;
    bool write(uint64_t addr, std::span<const uint8_t> data) const;

    [[nodiscard]] const Entry* find(uint64_t addr, uint64_t size) const;
    [[nodiscard]] const std::vector<Entry>& entries() const { return m_entries; }
    [[nodiscard]] uint64_t unclaimed_accesses() const { return m_unclaimed.load(std::memory_order_relaxed); }
    [[nodiscard]] BusKind kind() const { return m_kind; }

private:
    void note_unclaimed(uint64_t addr, size_t size, const char* access) const;

    BusKind m_kind;
    std::vector<Entry> m_entries;  // sorted by base
    mutable std::atomic<uint64_t> m_unclaimed{0};
};

}  // namespace keel
