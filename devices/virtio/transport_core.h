#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "bus/event_registry.h"
#include "common/fd.h"
#include "memory/guest_memory.h"
#include "virtio/queue/queue.h"
#include "virtio/virtio_device.h"

namespace keel::virtio {

// The three rings of a split queue, named as in virtio 1.2 §2.7 (the MMIO
// registers call them QueueDesc/QueueDriver(Avail)/QueueDevice(Used), the
// PCI common config queue_desc/queue_driver/queue_device).
enum class QueueAddress : uint8_t { Desc, Driver, Device };
// 64-bit queue addresses are programmed as two 32-bit halves by both
// transports (MMIO *_LOW/*_HIGH registers, Linux's vp_iowrite64_twopart).
enum class AddressHalf : uint8_t { Low, High };

// What a status-register write did; a transport clears its own interrupt
// state (MMIO InterruptStatus, PCI MSI-X vectors) after a Reset.
enum class StatusWrite : uint8_t { Updated, Reset };

// Everything the virtio-mmio and virtio-pci transports share (virtio 1.2
// §2.1 status, §2.2 features, §3.1.1 initialisation, §2.7 queue setup), so
// each transport is only a register layout over it:
//   - owns the VirtioDevice, one Queue per device queue and one kick eventfd
//     per queue (EFD_NONBLOCK|EFD_CLOEXEC; a KVM ioeventfd signals it, or
//     notify() when a notify write reaches keel's bus instead);
//   - the feature windows (32-bit words chosen by a select register), queue
//     select, queue configuration and the device-status state machine;
//   - the config generation counter and the transport statistics.
// Interrupt delivery is not here: each transport implements VirtioNotifier
// (MMIO: ISR bits + one InterruptLine; PCI: MSI-X) and passes itself in.
//
// Threads and locking. Register accessors are called on vCPU threads and
// serialise on one mutex inside the core; a driver racing itself across
// vCPUs (select on one, access on another) gets what it asked for but never
// corrupts keel. The device calls back through VirtioNotifier on the event
// loop thread; those paths must not take the core mutex: mark_needs_reset(),
// bump_config_generation(), count_interrupt() and status() are lock-free.
// Lock order: core mutex -> the device's own mutex (activate/reset/config
// calls happen under the core mutex) -> nothing (notifier calls are lock-free).
//
// Reset vs. the event loop. Writing 0 to the status register calls
// VirtioDevice::reset() under the core mutex. The device unsubscribes its kick
// fds (EventRegistry::remove) and, under its own lock, forgets the activation
// before returning; a handler that still runs afterwards re-checks that state
// under the device lock and does nothing (see bus/event_registry.h). Only
// then does the core reset the Queue objects, so no handler ever sees a queue
// change under it. Kick fds are never closed while the core lives, so a late
// handler always reads a valid fd. Queue registers are only writable while
// the device is not DRIVER_OK and the queue not ready, so after activation
// the vCPU side only reads queue fields the device never writes.
class TransportCore final {
public:
    // Throws keel::Error when the device offers no queue or a queue maximum
    // that is not a power of two in 1..32768 (§2.7), does not offer
    // VIRTIO_F_VERSION_1, or when an eventfd cannot be created.
    TransportCore(std::shared_ptr<VirtioDevice> device, const GuestMemory& memory, EventRegistry& events,
                  VirtioNotifier& notifier);
    // Resets an active device, so it unsubscribes from the event loop. The
    // event loop must not run this device's handlers any more (stopped, or
    // the device removed) before the core is destroyed.
    ~TransportCore();
    TransportCore(const TransportCore&) = delete;
    TransportCore& operator=(const TransportCore&) = delete;

    [[nodiscard]] VirtioDevice& device() const { return *m_device; }

    // --- Feature negotiation (§2.2, §3.1.1 steps 4-6) ---
    // Window `select` covers feature bits [32*select, 32*select + 32); windows
    // beyond bit 63 read 0.
    void set_device_features_select(uint32_t select);
    [[nodiscard]] uint32_t device_features_select() const;
    [[nodiscard]] uint32_t device_features_window() const;
    void set_driver_features_select(uint32_t select);
    [[nodiscard]] uint32_t driver_features_select() const;
    [[nodiscard]] uint32_t driver_features_window() const;
    // Ignored once FEATURES_OK is set (§2.2.2: features are fixed from then).
    // Bits acked beyond bit 63 make FEATURES_OK fail.
    void write_driver_features_window(uint32_t value);
    [[nodiscard]] uint64_t acked_features() const;

    // --- Queue configuration (§2.7, §4.2.3.2, §4.1.5.1.3) ---
    [[nodiscard]] uint16_t num_queues() const { return static_cast<uint16_t>(m_queues.size()); }
    void set_queue_select(uint32_t index);
    [[nodiscard]] uint32_t queue_select() const;
    // The accessors below act on the selected queue. For a selected index
    // that names no queue they read 0 and writes are ignored (MMIO
    // QueueNumMax 0 = "queue not available", PCI queue_size 0).
    [[nodiscard]] uint16_t queue_max_size() const;
    [[nodiscard]] uint16_t queue_size() const;
    [[nodiscard]] bool queue_ready() const;
    [[nodiscard]] uint64_t queue_address(QueueAddress which) const;
    [[nodiscard]] uint32_t queue_address_half(QueueAddress which, AddressHalf half) const;
    // Writes are ignored (and logged once) after DRIVER_OK or while the
    // queue is ready: the spec has the driver configure a queue before
    // enabling it, and keel does not offer VIRTIO_F_RING_RESET. Values are
    // validated at DRIVER_OK by Queue::activate, not here.
    void set_queue_size(uint16_t size);
    void set_queue_address(QueueAddress which, uint64_t gpa);
    void set_queue_address_half(QueueAddress which, AddressHalf half, uint32_t value);
    // 1 enables the selected queue, 0 disables it (before DRIVER_OK only);
    // any other value is ignored.
    void write_queue_ready(uint32_t value);

    // --- Device status (§2.1, §3.1.1) ---
    // VIRTIO_CONFIG_S_* bits from <linux/virtio_config.h>. Lock-free.
    [[nodiscard]] uint8_t status() const { return m_status.load(std::memory_order_acquire); }
    // 0 resets the device. Otherwise bits are only ever added (a driver must
    // not clear them, §2.1.2): FEATURES_OK stays clear when the driver acked
    // a bit the device did not offer or did not ack VIRTIO_F_VERSION_1;
    // DRIVER_OK activates every ready queue and then the device, and sets
    // DEVICE_NEEDS_RESET when a queue is invalid or the device refuses.
    StatusWrite write_status(uint8_t value);

    // --- Device configuration space (§2.5) ---
    // Lock-free; a transport calls bump_config_generation() from its
    // signal_config_change() (the device changed its config space).
    [[nodiscard]] uint32_t config_generation() const { return m_generation.load(std::memory_order_acquire); }
    void bump_config_generation() { m_generation.fetch_add(1, std::memory_order_acq_rel); }
    void read_config(uint64_t offset, std::span<uint8_t> data) const;
    void write_config(uint64_t offset, std::span<const uint8_t> data);

    // --- Notifications ---
    // A queue-notify write that reached keel's bus (no ioeventfd, or one that
    // did not match): signal that queue's kick fd. Bad indices are ignored.
    void notify(uint32_t queue_index);
    [[nodiscard]] std::span<const int> kick_fds() const { return m_kick_fd_numbers; }

    // For the transport's VirtioNotifier::set_needs_reset(): sets
    // DEVICE_NEEDS_RESET (lock-free). Returns true when the bit was newly
    // set; the transport then sends a configuration-change notification
    // (§2.1.2). Logged once per activation.
    bool mark_needs_reset();
    // The transport delivered an interrupt (any kind). Lock-free.
    void count_interrupt() { m_interrupts.fetch_add(1, std::memory_order_relaxed); }

    // The device's counters followed by the core's: "kicks" (notify writes
    // that reached keel, not ioeventfd ones), "interrupts", "resets",
    // "needs_reset".
    [[nodiscard]] std::vector<DeviceCounter> counters() const;
    // Queue::describe_state() of every queue, "q0 ...", for the statistics
    // of a stopped VM (no device handler may run meanwhile).
    [[nodiscard]] std::vector<std::string> queue_states() const;

private:
    [[nodiscard]] Queue* selected_queue();
    [[nodiscard]] const Queue* selected_queue() const;
    [[nodiscard]] bool queue_writable(const Queue& queue);
    void reset_locked();
    [[nodiscard]] uint8_t negotiate_features_locked(uint8_t requested);
    [[nodiscard]] uint8_t activate_locked(uint8_t requested);
    void log_once(std::atomic<bool>& flag, const char* what) const;

    std::shared_ptr<VirtioDevice> m_device;
    const GuestMemory& m_memory;
    EventRegistry& m_events;
    VirtioNotifier& m_notifier;
    const uint64_t m_device_features;

    mutable std::mutex m_mutex;
    std::vector<Queue> m_queues;
    std::vector<UniqueFd> m_kick_fds;
    std::vector<int> m_kick_fd_numbers;  // what ActivationContext::kick_fds views
    uint32_t m_device_features_select = 0;
    uint32_t m_driver_features_select = 0;
    uint64_t m_driver_features = 0;
    bool m_driver_features_beyond_64 = false;
    uint32_t m_queue_select = 0;
    bool m_device_active = false;

    std::atomic<uint8_t> m_status{0};
    std::atomic<uint32_t> m_generation{0};
    std::atomic<bool> m_needs_reset_logged{false};
    mutable std::atomic<bool> m_logged_queue_write{false};
    mutable std::atomic<bool> m_logged_status{false};
    mutable std::atomic<bool> m_logged_notify{false};

    std::atomic<uint64_t> m_kicks{0};
    std::atomic<uint64_t> m_interrupts{0};
    std::atomic<uint64_t> m_resets{0};
    std::atomic<uint64_t> m_needs_reset{0};
};

}  // namespace keel::virtio
