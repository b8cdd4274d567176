#pragma once

// Shared by the PCI tests: little-endian helpers, a recording MSI sink and a
// small PCI function built from PciConfigSpace.

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "pci/msix.h"
#include "pci/pci_config_space.h"
#include "pci/pci_device.h"

namespace keel::pci::test {

inline std::vector<uint8_t> le(uint64_t value, size_t size) {
    std::vector<uint8_t> bytes(size);
    for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));
    return bytes;
}

inline uint64_t from_le(std::span<const uint8_t> bytes) {
    uint64_t value = 0;
    for (size_t i = 0; i < bytes.size(); ++i) value |= uint64_t{bytes[i]} << (8 * i);
    return value;
}

// Guest-style accessors over a BusDevice.
inline uint64_t read_n(BusDevice& target, uint64_t offset, size_t size) {
    std::vector<uint8_t> bytes(size);
    target.read(offset, bytes);
    return from_le(bytes);
}

inline void write_n(BusDevice& target, uint64_t offset, uint64_t value, size_t size) {
    target.write(offset, le(value, size));
}

// Records what MsixCapability asks of its sink, in order.
class RecordingSink final : public MsiVectorSink {
public:
    struct Call {
        enum class Kind { Configure, Trigger } kind;
        uint16_t vector;
        MsiMessage message;
    };
    void configure(uint16_t vector, const MsiMessage& message) override {
        std::lock_guard lock(m_mutex);
        calls.push_back({Call::Kind::Configure, vector, message});
    }
    void trigger(uint16_t vector) override {
        std::lock_guard lock(m_mutex);
        calls.push_back({Call::Kind::Trigger, vector, {}});
    }
    [[nodiscard]] size_t triggers(uint16_t vector) const {
        size_t count = 0;
        for (const Call& call : calls) count += call.kind == Call::Kind::Trigger && call.vector == vector;
        return count;
    }
    [[nodiscard]] size_t configures() const {
        size_t count = 0;
        for (const Call& call : calls) count += call.kind == Call::Kind::Configure;
        return count;
    }
    std::vector<Call> calls;

private:
    std::mutex m_mutex;
};

// A BusDevice that remembers the last access (for BAR decoding tests).
class ProbeDevice final : public BusDevice {
public:
    void read(uint64_t offset, std::span<uint8_t> data) override {
        last_read = offset;
        for (auto& byte : data) byte = 0x5a;
    }
    void write(uint64_t offset, std::span<const uint8_t> /*data*/) override { last_write = offset; }
    uint64_t last_read = UINT64_MAX;
    uint64_t last_write = UINT64_MAX;
};

// A function with the given BARs, forwarding config accesses to its space.
class TestFunction final : public PciDevice {
public:
    explicit TestFunction(std::vector<BarSpec> bars, std::string name = "test")
        : m_config(PciIdentity{.vendor_id = 0x1af4, .device_id = 0x1042, .class_code = 0x018000}),
          m_name(std::move(name)) {
        for (const BarSpec& bar : bars) {
            m_config.add_bar(bar);
            m_regions.push_back(BarRegion{bar, std::make_shared<ProbeDevice>()});
        }
    }
    [[nodiscard]] std::string_view name() const override { return m_name; }
    void config_read(uint16_t offset, std::span<uint8_t> data) override { m_config.read(offset, data); }
    void config_write(uint16_t offset, std::span<const uint8_t> data) override { m_config.write(offset, data); }
    [[nodiscard]] std::vector<BarRegion> bar_regions() override { return m_regions; }
    void bar_assigned(uint8_t index, uint64_t address) override { m_config.set_bar_address(index, address); }

    PciConfigSpace& config() { return m_config; }
    ProbeDevice& probe(size_t region) { return static_cast<ProbeDevice&>(*m_regions.at(region).device); }

private:
    PciConfigSpace m_config;
    std::string m_name;
    std::vector<BarRegion> m_regions;
};

}  // namespace keel::pci::test
