#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bus/event_registry.h"
#include "memory/guest_memory.h"
#include "virtio/queue/queue.h"

namespace keel::virtio {

// What a device can ask of the transport that carries it. Implemented by the
// MMIO and PCI transports (ISR bits + irqfd, or the queue's MSI-X vector);
// safe to call from the event-loop thread.
class VirtioNotifier {
public:
    virtual ~VirtioNotifier() = default;
    // "Used buffer notification" for queue `index` (virtio 1.2 §2.3).
    virtual void signal_used_queue(uint16_t index) = 0;
    // "Configuration change notification".
    virtual void signal_config_change() = 0;
    // The driver broke the protocol (or the device failed for good): set
    // DEVICE_NEEDS_RESET and tell the driver (§2.1.2). Logged once by the caller.
    virtual void set_needs_reset() = 0;
};

// Handed to VirtioDevice::activate() when the driver sets DRIVER_OK. The
// queues are validated and active; `kick_fds[i]` is an eventfd the transport
// (or KVM, through an ioeventfd) signals when the driver notifies queue i.
// Everything here outlives the activation (until reset()).
struct ActivationContext {
    const GuestMemory& memory;
    std::span<Queue> queues;
    std::span<const int> kick_fds;
    uint64_t acked_features = 0;
    VirtioNotifier& notifier;
    EventRegistry& events;
};

// One counter a device reports in --stats ("requests", "bytes_read", ...).
using DeviceCounter = std::pair<std::string, uint64_t>;

// A virtio device, independent of its transport (virtio 1.2 §2 and §5).
// Register accesses reach it on vCPU threads through the transport (which
// serialises them under its lock); queue work happens on the event loop.
class VirtioDevice {
public:
    virtual ~VirtioDevice() = default;

    // VIRTIO_ID_* from <linux/virtio_ids.h>.
    [[nodiscard]] virtual uint32_t device_type() const = 0;
    // A short name for logs and stats: "blk0", "rng".
    [[nodiscard]] virtual std::string_view name() const = 0;
    // One entry per queue: the largest size the device accepts (power of two).
    [[nodiscard]] virtual std::vector<uint16_t> queue_max_sizes() const = 0;
    // Every feature bit offered, including VIRTIO_F_VERSION_1 and the ring
    // features (INDIRECT_DESC, EVENT_IDX) the device handles.
    [[nodiscard]] virtual uint64_t device_features() const = 0;

    // Device configuration space (§4.x.4): reads past its end return zeros,
    // writes to read-only fields are ignored.
    virtual void read_config(uint64_t offset, std::span<uint8_t> data) const = 0;
    virtual void write_config(uint64_t offset, std::span<const uint8_t> data) = 0;

    // DRIVER_OK: start serving the queues (subscribe kick fds to the event
    // loop). Must return quickly. Returns false when the device cannot run
    // with what the driver negotiated; the transport then sets NEEDS_RESET.
    [[nodiscard]] virtual bool activate(const ActivationContext& context) = 0;
    // The driver wrote 0 to the status register: stop using the queues
    // (unsubscribe, drop in-flight completions) and forget the activation.
    virtual void reset() = 0;

    // Counters for --stats; read on the main thread while the VM runs, so
    // devices keep them in atomics.
    [[nodiscard]] virtual std::vector<DeviceCounter> counters() const = 0;
};

}  // namespace keel::virtio
