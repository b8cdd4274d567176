#pragma once

// Shared pieces of the virtio-pci transport tests: a recording MSI-X vector
// sink, a small device with a config space, and a "guest" that reaches the
// transport the ways a driver does (config space, the BAR) and walks the
// capability list as Linux's virtio_pci_find_capability does.

#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "pci/msi.h"
#include "virtio/pci/virtio_pci_transport.h"
#include "virtio/virtio_device.h"

namespace keel::test {

// Records what the MSI-X capability asks of keel's MSI routes.
class RecordingSink final : public pci::MsiVectorSink {
public:
    void configure(uint16_t vector, const pci::MsiMessage& message) override {
        std::lock_guard lock(m_mutex);
        m_messages[vector] = message;
        ++m_configures;
    }
    void trigger(uint16_t vector) override {
        std::lock_guard lock(m_mutex);
        m_triggers.push_back(vector);
    }

    [[nodiscard]] std::vector<uint16_t> triggers() const {
        std::lock_guard lock(m_mutex);
        return m_triggers;
    }
    [[nodiscard]] int triggers_of(uint16_t vector) const {
        std::lock_guard lock(m_mutex);
        int n = 0;
        for (const uint16_t v : m_triggers) n += v == vector ? 1 : 0;
        return n;
    }
    [[nodiscard]] std::optional<pci::MsiMessage> message(uint16_t vector) const {
        std::lock_guard lock(m_mutex);
        const auto it = m_messages.find(vector);
        if (it == m_messages.end()) return std::nullopt;
        return it->second;
    }
    [[nodiscard]] int configures() const {
        std::lock_guard lock(m_mutex);
        return m_configures;
    }
    void clear_triggers() {
        std::lock_guard lock(m_mutex);
        m_triggers.clear();
    }

private:
    mutable std::mutex m_mutex;
    std::map<uint16_t, pci::MsiMessage> m_messages;
    std::vector<uint16_t> m_triggers;
    int m_configures = 0;
};

// A device with two queues and an 8-byte config space (a counter the test
// can change), for what virtio-rng does not have.
class ConfigDevice final : public virtio::VirtioDevice {
public:
    [[nodiscard]] uint32_t device_type() const override { return VIRTIO_ID_CONSOLE; }
    [[nodiscard]] std::string_view name() const override { return "cfgdev"; }
    [[nodiscard]] std::vector<uint16_t> queue_max_sizes() const override { return {16, 32}; }
    [[nodiscard]] uint64_t device_features() const override {
        return (1ull << VIRTIO_F_VERSION_1) | (1ull << 0) | (1ull << 35);
    }
    void read_config(uint64_t offset, std::span<uint8_t> data) const override {
        std::lock_guard lock(m_mutex);
        for (size_t i = 0; i < data.size(); ++i) {
            data[i] = offset + i < m_config.size() ? m_config[offset + i] : 0;
        }
    }
    void write_config(uint64_t offset, std::span<const uint8_t> data) override {
        std::lock_guard lock(m_mutex);
        for (size_t i = 0; i < data.size(); ++i) {
            if (offset + i < m_config.size()) m_config[offset + i] = data[i];
        }
    }
    [[nodiscard]] bool activate(const virtio::ActivationContext& context) override {
        std::lock_guard lock(m_mutex);
        m_notifier = &context.notifier;
        ++m_activations;
        return true;
    }
    void reset() override {
        std::lock_guard lock(m_mutex);
        m_notifier = nullptr;
        ++m_resets;
    }
    [[nodiscard]] std::vector<virtio::DeviceCounter> counters() const override { return {}; }

    void set_config(std::array<uint8_t, 8> bytes) {
        std::lock_guard lock(m_mutex);
        m_config = bytes;
    }
    [[nodiscard]] std::array<uint8_t, 8> config() const {
        std::lock_guard lock(m_mutex);
        return m_config;
    }
    [[nodiscard]] int activations() const {
        std::lock_guard lock(m_mutex);
        return m_activations;
    }
    [[nodiscard]] int resets() const {
        std::lock_guard lock(m_mutex);
        return m_resets;
    }

private:
    mutable std::mutex m_mutex;
    std::array<uint8_t, 8> m_config{1, 2, 3, 4, 5, 6, 7, 8};
    virtio::VirtioNotifier* m_notifier = nullptr;
    int m_activations = 0;
    int m_resets = 0;
};

// What the guest sees of one virtio-pci function.
class PciGuest {
public:
    explicit PciGuest(virtio::VirtioPciTransport& transport) : m_t(transport) {}

    // --- Config space ---
    [[nodiscard]] uint32_t cfg_read(uint16_t offset, size_t size) {
        std::array<uint8_t, 4> bytes{};
        m_t.config_read(offset, std::span(bytes).first(size));
        uint32_t value = 0;
        std::memcpy(&value, bytes.data(), size);
        return value;
    }
    [[nodiscard]] uint8_t cfg8(uint16_t offset) { return static_cast<uint8_t>(cfg_read(offset, 1)); }
    [[nodiscard]] uint16_t cfg16(uint16_t offset) { return static_cast<uint16_t>(cfg_read(offset, 2)); }
    [[nodiscard]] uint32_t cfg32(uint16_t offset) { return cfg_read(offset, 4); }
    void cfg_write(uint16_t offset, size_t size, uint32_t value) {
        std::array<uint8_t, 4> bytes{};
        std::memcpy(bytes.data(), &value, size);
        m_t.config_write(offset, std::span<const uint8_t>(bytes).first(size));
    }

    // Linux's pci_find_capability / pci_find_next_capability: follow the
    // list from 0x34 (at most 48 hops, pointers masked to dwords).
    [[nodiscard]] std::vector<uint8_t> capabilities(uint8_t id) {
        std::vector<uint8_t> found;
        if ((cfg16(PCI_STATUS) & PCI_STATUS_CAP_LIST) == 0) return found;
        uint8_t pos = cfg8(PCI_CAPABILITY_LIST);
        for (int ttl = 48; ttl > 0 && pos >= 0x40; --ttl) {
            pos &= static_cast<uint8_t>(~3);
            const uint8_t cap_id = cfg8(pos);
            if (cap_id == 0xff) break;
            if (cap_id == id) found.push_back(pos);
            pos = cfg8(static_cast<uint16_t>(pos + PCI_CAP_LIST_NEXT));
        }
        return found;
    }

    // virtio_pci_find_capability: the first vendor capability of `cfg_type`.
    struct VirtioCap {
        uint8_t position = 0;
        uint8_t bar = 0;
        uint32_t offset = 0;
        uint32_t length = 0;
    };
    [[nodiscard]] std::optional<VirtioCap> find_virtio_cap(uint8_t cfg_type) {
        for (const uint8_t pos : capabilities(PCI_CAP_ID_VNDR)) {
            const uint8_t bar = cfg8(static_cast<uint16_t>(pos + VIRTIO_PCI_CAP_BAR));
            if (bar > 5) continue;
            if (cfg8(static_cast<uint16_t>(pos + VIRTIO_PCI_CAP_CFG_TYPE)) != cfg_type) continue;
            return VirtioCap{pos, bar, cfg32(static_cast<uint16_t>(pos + VIRTIO_PCI_CAP_OFFSET)),
                             cfg32(static_cast<uint16_t>(pos + VIRTIO_PCI_CAP_LENGTH))};
        }
        return std::nullopt;
    }

    // --- BAR 0, offsets BAR-relative ---
    [[nodiscard]] uint64_t bar_read(uint64_t offset, size_t size) {
        std::array<uint8_t, 8> bytes{};
        m_t.bar_read(offset, std::span(bytes).first(size));
        uint64_t value = 0;
        std::memcpy(&value, bytes.data(), size);
        return value;
    }
    void bar_write(uint64_t offset, size_t size, uint64_t value) {
        std::array<uint8_t, 8> bytes{};
        std::memcpy(bytes.data(), &value, size);
        m_t.bar_write(offset, std::span<const uint8_t>(bytes).first(size));
    }
    // Common configuration fields by their UAPI offset, natural width.
    [[nodiscard]] uint64_t common(uint64_t field, size_t size) {
        return bar_read(virtio::VirtioPciLayout::kCommonOffset + field, size);
    }
    void set_common(uint64_t field, size_t size, uint64_t value) {
        bar_write(virtio::VirtioPciLayout::kCommonOffset + field, size, value);
    }
    [[nodiscard]] uint8_t status() { return static_cast<uint8_t>(common(VIRTIO_PCI_COMMON_STATUS, 1)); }
    void set_status(uint8_t value) { set_common(VIRTIO_PCI_COMMON_STATUS, 1, value); }
    void select_queue(uint16_t queue) { set_common(VIRTIO_PCI_COMMON_Q_SELECT, 2, queue); }
    [[nodiscard]] uint8_t read_isr() { return static_cast<uint8_t>(bar_read(virtio::VirtioPciLayout::kIsrOffset, 1)); }

    // MSI-X: enable through message control, program entry `vector`.
    void enable_msix() {
        const uint8_t cap = capabilities(PCI_CAP_ID_MSIX).at(0);
        const uint16_t control = cfg16(static_cast<uint16_t>(cap + PCI_MSIX_FLAGS));
        cfg_write(static_cast<uint16_t>(cap + PCI_MSIX_FLAGS), 2, control | PCI_MSIX_FLAGS_ENABLE);
    }
    void program_vector(uint16_t vector, uint64_t address, uint32_t data) {
        const uint64_t entry = m_t.layout().msix_table_offset + uint64_t{vector} * PCI_MSIX_ENTRY_SIZE;
        bar_write(entry + PCI_MSIX_ENTRY_LOWER_ADDR, 4, static_cast<uint32_t>(address));
        bar_write(entry + PCI_MSIX_ENTRY_UPPER_ADDR, 4, static_cast<uint32_t>(address >> 32));
        bar_write(entry + PCI_MSIX_ENTRY_DATA, 4, data);
        bar_write(entry + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0);  // unmask
    }

private:
    virtio::VirtioPciTransport& m_t;
};

}  // namespace keel::test
