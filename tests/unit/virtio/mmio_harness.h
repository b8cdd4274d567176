#pragma once

// A virtio-mmio transport on fake guest memory, a fake event loop and a
// counting interrupt line, plus the register accesses a driver makes
// (Linux's drivers/virtio/virtio_mmio.c order), for transport and device tests.

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <poll.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "device_fakes.h"
#include "memory/guest_memory.h"
#include "virtio/mmio_transport.h"
#include "virtio/virtio_device.h"
#include "virtio_fakes/fake_driver_queue.h"
#include "virtio_fakes/fake_event_registry.h"

namespace keel::test {

inline constexpr uint64_t kVersion1 = 1ull << VIRTIO_F_VERSION_1;
inline constexpr uint8_t kStatusAck = VIRTIO_CONFIG_S_ACKNOWLEDGE;
inline constexpr uint8_t kStatusDriver = VIRTIO_CONFIG_S_DRIVER;
inline constexpr uint8_t kStatusFeaturesOk = VIRTIO_CONFIG_S_FEATURES_OK;
inline constexpr uint8_t kStatusDriverOk = VIRTIO_CONFIG_S_DRIVER_OK;
inline constexpr uint8_t kStatusNeedsReset = VIRTIO_CONFIG_S_NEEDS_RESET;
inline constexpr uint8_t kStatusFailed = VIRTIO_CONFIG_S_FAILED;

// A virtio device whose behaviour tests control: two queues (16 and 8
// entries), features VERSION_1 | bit 0 | bit 40, an 8-byte config space.
class ScriptedDevice final : public virtio::VirtioDevice {
public:
    static constexpr uint64_t kFeatures = kVersion1 | 1ull | (1ull << 40);
    static constexpr uint32_t kType = 42;

    [[nodiscard]] uint32_t device_type() const override { return kType; }
    [[nodiscard]] std::string_view name() const override { return "scripted"; }
    [[nodiscard]] std::vector<uint16_t> queue_max_sizes() const override { return max_sizes; }
    [[nodiscard]] uint64_t device_features() const override { return kFeatures; }
    void read_config(uint64_t offset, std::span<uint8_t> data) const override {
        for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < config.size() ? config[offset + i] : 0;
    }
    void write_config(uint64_t offset, std::span<const uint8_t> data) override {
        ++config_writes;
        for (size_t i = 0; i < data.size(); ++i) {
            if (offset + i < config.size()) config[offset + i] = data[i];
        }
    }
    [[nodiscard]] bool activate(const virtio::ActivationContext& context) override {
        ++activations;
        acked = context.acked_features;
        kick_fds.assign(context.kick_fds.begin(), context.kick_fds.end());
        notifier = &context.notifier;
        queues_active.clear();
        for (const auto& q : context.queues) queues_active.push_back(q.active());
        return accept_activation;
    }
    void reset() override { ++resets; }
    [[nodiscard]] std::vector<virtio::DeviceCounter> counters() const override { return {{"scripted", 7}}; }

    std::vector<uint16_t> max_sizes{16, 8};
    std::array<uint8_t, 8> config{1, 2, 3, 4, 5, 6, 7, 8};
    bool accept_activation = true;
    int activations = 0;
    int resets = 0;
    int config_writes = 0;
    uint64_t acked = 0;
    std::vector<int> kick_fds;
    std::vector<bool> queues_active;
    virtio::VirtioNotifier* notifier = nullptr;
};

// An ordinary MMIO window at the first virtio-mmio slot keel uses.
inline constexpr virtio::MmioSlot kTestSlot{Gpa{0xd0001000}, 5};

template <typename Device>
class MmioHarness {
public:
    explicit MmioHarness(std::shared_ptr<Device> dev = std::make_shared<Device>())
        : memory(GuestMemory::create({{Gpa{0}, 1 << 20}})),
          irq(std::make_shared<CountingIrq>()),
          device(std::move(dev)),
          transport(device, memory, events, irq, kTestSlot) {}

    uint32_t read32(uint64_t offset) {
        std::array<uint8_t, 4> data{};
        transport.read(offset, data);
        uint32_t value = 0;
        std::memcpy(&value, data.data(), sizeof value);
        return value;
    }
    void write32(uint64_t offset, uint32_t value) {
        std::array<uint8_t, 4> data{};
        std::memcpy(data.data(), &value, sizeof value);
        transport.write(offset, data);
    }
    [[nodiscard]] uint8_t status() { return static_cast<uint8_t>(read32(VIRTIO_MMIO_STATUS)); }
    void set_status(uint8_t bits) { write32(VIRTIO_MMIO_STATUS, status() | bits); }

    void write_driver_features(uint64_t features) {
        write32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
        write32(VIRTIO_MMIO_DRIVER_FEATURES, static_cast<uint32_t>(features));
        write32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
        write32(VIRTIO_MMIO_DRIVER_FEATURES, static_cast<uint32_t>(features >> 32));
    }
    // §3.1.1 steps 1-6; returns whether FEATURES_OK stuck.
    bool negotiate(uint64_t features) {
        write32(VIRTIO_MMIO_STATUS, 0);
        set_status(kStatusAck);
        set_status(kStatusDriver);
        write_driver_features(features);
        set_status(kStatusFeaturesOk);
        return (status() & kStatusFeaturesOk) != 0;
    }
    // Programs queue `index` from a FakeDriverQueue, then QueueReady = 1.
    void setup_queue(uint32_t index, const FakeDriverQueue& queue) {
        write32(VIRTIO_MMIO_QUEUE_SEL, index);
        write32(VIRTIO_MMIO_QUEUE_NUM, queue.size());
        write_address(VIRTIO_MMIO_QUEUE_DESC_LOW, queue.desc_table().value);
        write_address(VIRTIO_MMIO_QUEUE_AVAIL_LOW, queue.avail_ring().value);
        write_address(VIRTIO_MMIO_QUEUE_USED_LOW, queue.used_ring().value);
        write32(VIRTIO_MMIO_QUEUE_READY, 1);
    }
    void write_address(uint64_t low_offset, uint64_t value) {
        write32(low_offset, static_cast<uint32_t>(value));
        write32(low_offset + 4, static_cast<uint32_t>(value >> 32));
    }
    void driver_ok() { set_status(kStatusDriverOk); }
    void notify(uint32_t queue) { write32(VIRTIO_MMIO_QUEUE_NOTIFY, queue); }

    [[nodiscard]] uint64_t counter(const std::string& name) const {
        for (const auto& [key, value] : transport.counters()) {
            if (key == name) return value;
        }
        return UINT64_MAX;
    }

    GuestMemory memory;
    FakeEventRegistry events;
    std::shared_ptr<CountingIrq> irq;
    std::shared_ptr<Device> device;
    virtio::VirtioMmioTransport transport;
};

// Whether an fd is readable, without consuming it.
inline bool fd_readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

}  // namespace keel::test
