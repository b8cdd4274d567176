#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "memory/gpa.h"
#include "memory/guest_memory.h"
#include "virtio/queue/descriptor_chain.h"
#include "virtio/queue/queue_error.h"

namespace keel::virtio {

enum class PopStatus : uint8_t { Chain, Empty, Broken };

// One split virtqueue (virtio 1.2 §2.7), the device side. Written once and
// used by every device and both transports.
//
// Life cycle: the transport programs size and ring addresses (vCPU thread,
// under the transport's lock), then activate() validates them once. After
// that only the device touches the queue, on the event-loop thread, until
// reset(). A protocol violation makes pop()/add_used() report Broken/false
// and remembers the first error; the device then stops using the queue and
// asks the transport for DEVICE_NEEDS_RESET.
class Queue {
public:
    explicit Queue(uint16_t max_size);

    [[nodiscard]] uint16_t max_size() const { return m_max_size; }

    // --- Driver-programmed configuration (transport registers) ---
    void set_size(uint16_t size) { m_size = size; }
    void set_desc_table(Gpa gpa) { m_desc_table = gpa; }
    void set_avail_ring(Gpa gpa) { m_avail_ring = gpa; }
    void set_used_ring(Gpa gpa) { m_used_ring = gpa; }
    void set_ready(bool ready) { m_ready = ready; }
    [[nodiscard]] uint16_t size() const { return m_size; }
    [[nodiscard]] Gpa desc_table() const { return m_desc_table; }
    [[nodiscard]] Gpa avail_ring() const { return m_avail_ring; }
    [[nodiscard]] Gpa used_ring() const { return m_used_ring; }
    [[nodiscard]] bool ready() const { return m_ready; }

    // Validates size (power of two, 1..max_size), ring alignment and that each
    // ring lies inside guest RAM; remembers which of VIRTIO_RING_F_EVENT_IDX
    // and VIRTIO_RING_F_INDIRECT_DESC were negotiated. QueueError::None on
    // success. The queue starts with notifications enabled.
    [[nodiscard]] QueueError activate(const GuestMemory& memory, uint64_t acked_features);
    // Back to the reset state (size = max_size, addresses 0, not ready).
    void reset();
    [[nodiscard]] bool active() const { return m_memory != nullptr; }

    // --- Device side (event-loop thread) ---
    // Takes the next available chain into `chain`. Empty when the driver has
    // published nothing new; Broken (see last_error()) on any violation.
    [[nodiscard]] PopStatus pop(DescriptorChain& chain);
    // Returns a chain to the driver with `len` bytes written into its
    // writable part. False when the used ring cannot be written.
    [[nodiscard]] bool add_used(uint16_t head_index, uint32_t len);
    // After a batch of add_used(): whether the driver wants an interrupt now
    // (VRING_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX, §2.7.10).
    [[nodiscard]] bool needs_notification();

    // Notification suppression while draining (§2.7.10): disable, drain with
    // pop(), then enable_notification(), which returns true when the driver
    // published more chains meanwhile — drain again, or a kick is lost.
    void disable_notification();
    [[nodiscard]] bool enable_notification();

    [[nodiscard]] QueueError last_error() const { return m_error; }

    // Both sides' ring indices and notification fields, as one line
    // ("avail 12/12 used 12 used_event 11 ..."), for the statistics of a VM
    // that stopped: what a stalled queue was waiting for. Reads guest memory;
    // only when no device handler runs. "inactive" before activate().
    [[nodiscard]] std::string describe_state() const;

private:
    [[nodiscard]] QueueError read_chain(uint16_t head, DescriptorChain& chain) const;
    [[nodiscard]] bool refresh_avail_idx();
    [[nodiscard]] bool publish_avail_event();
    PopStatus fail(QueueError error);

    uint16_t m_max_size;
    uint16_t m_size;
    Gpa m_desc_table{0};
    Gpa m_avail_ring{0};
    Gpa m_used_ring{0};
    bool m_ready = false;

    const GuestMemory* m_memory = nullptr;
    bool m_event_idx = false;
    bool m_indirect = false;
    uint16_t m_next_avail = 0;   // next avail ring slot the device reads
    uint16_t m_next_used = 0;    // next used ring slot the device writes
    uint16_t m_avail_idx = 0;    // avail.idx as last read (validated against m_next_avail)
    bool m_notifications_disabled = false;
    uint16_t m_avail_event = 0;  // with EVENT_IDX: what avail_event holds, when valid
    bool m_avail_event_valid = false;
    uint16_t m_signalled_used = 0;
    bool m_signalled_used_valid = false;
    QueueError m_error = QueueError::None;
};

}  // namespace keel::virtio
