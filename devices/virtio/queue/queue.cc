#include "virtio/queue/queue.h"

#ifndef VIRTIO_RING_NO_LEGACY
#define VIRTIO_RING_NO_LEGACY  // its legacy vring_init() is not valid C++
#endif
#include <linux/virtio_ring.h>

#include <atomic>
#include <bit>
#include <cstddef>
#include <optional>
#include <string>

namespace keel::virtio {

// The rings are little-endian (virtio 1.2 §2.4: VIRTIO_F_VERSION_1); keel
// reads them as host integers.
static_assert(std::endian::native == std::endian::little, "keel assumes a little-endian host (x86)");
static_assert(sizeof(vring_desc) == 16 && sizeof(vring_used_elem) == 8);

namespace {

constexpr uint64_t kDescAlign = VRING_DESC_ALIGN_SIZE;  // §2.7 table "Alignment"
constexpr uint64_t kAvailAlign = VRING_AVAIL_ALIGN_SIZE;
constexpr uint64_t kUsedAlign = VRING_USED_ALIGN_SIZE;
constexpr uint64_t kRingHeader = 4;  // flags, idx of both rings
constexpr uint16_t kKnownDescFlags = VRING_DESC_F_NEXT | VRING_DESC_F_WRITE | VRING_DESC_F_INDIRECT;

// §2.7.5.3.1 says no chain may be longer than the queue size, but Linux builds
// an indirect table from the whole scatterlist whatever the queue size (only
// direct chains are held to it), so keel accepts indirect tables of up to 1024
// entries (Linux's largest virtio queue, and 16 KiB of table). With at most
// `size` direct hops before it, a pop reads at most size + 1024 descriptors.
constexpr uint32_t kMaxIndirectDescriptors = 1024;

// Ring sizes including the event-index trailer (§2.7: "6 + 2 * Queue Size",
// "6 + 8 * Queue Size"): a driver may use it whether or not EVENT_IDX is
// negotiated, so it must lie in RAM too.
uint64_t desc_table_bytes(uint16_t size) {
    return sizeof(vring_desc) * uint64_t{size};
}
uint64_t avail_ring_bytes(uint16_t size) {
    return kRingHeader + 2 * uint64_t{size} + 2;
}
uint64_t used_ring_bytes(uint16_t size) {
    return kRingHeader + sizeof(vring_used_elem) * uint64_t{size} + 2;
}

// vring_need_event() of §2.7.10 / <linux/virtio_ring.h>, in 16-bit modular
// arithmetic: did the index move from `old_idx` to `new_idx` across `event`?
bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
    return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

}  // namespace

Queue::Queue(uint16_t max_size) : m_max_size(max_size), m_size(max_size) {}

QueueError Queue::activate(const GuestMemory& memory, uint64_t acked_features) {
    m_memory = nullptr;
    m_next_avail = m_next_used = m_avail_idx = 0;
    m_signalled_used = 0;
    m_signalled_used_valid = false;
    m_notifications_disabled = false;
    m_avail_event_valid = false;
    m_error = QueueError::None;

    QueueError error = QueueError::None;
    if (m_size == 0 || m_size > m_max_size) {
        error = QueueError::SizeZeroOrTooLarge;
    } else if (!std::has_single_bit(m_size)) {  // split rings only (§2.7)
        error = QueueError::SizeNotPowerOfTwo;
    } else if (m_desc_table.value % kDescAlign != 0 || m_avail_ring.value % kAvailAlign != 0 ||
               m_used_ring.value % kUsedAlign != 0) {
        error = QueueError::RingMisaligned;
    } else if (!memory.contains(m_desc_table, desc_table_bytes(m_size)) ||
               !memory.contains(m_avail_ring, avail_ring_bytes(m_size)) ||
               !memory.contains(m_used_ring, used_ring_bytes(m_size))) {
        error = QueueError::RingOutOfGuestMemory;
    }
    if (error != QueueError::None) {
        m_error = error;
        return error;
    }
    m_event_idx = (acked_features & (uint64_t{1} << VIRTIO_RING_F_EVENT_IDX)) != 0;
    m_indirect = (acked_features & (uint64_t{1} << VIRTIO_RING_F_INDIRECT_DESC)) != 0;
    m_memory = &memory;
    // The driver zeroes the used ring before DRIVER_OK (§2.7.8), so its
    // flags (notifications on) and idx (0) already match this state.
    return QueueError::None;
}

void Queue::reset() {
    m_size = m_max_size;
    m_desc_table = m_avail_ring = m_used_ring = Gpa{0};
    m_ready = false;
    m_memory = nullptr;
    m_event_idx = m_indirect = false;
    m_next_avail = m_next_used = m_avail_idx = 0;
    m_signalled_used = 0;
    m_signalled_used_valid = false;
    m_notifications_disabled = false;
    m_avail_event_valid = false;
    m_error = QueueError::None;
}

PopStatus Queue::fail(QueueError error) {
    if (m_error == QueueError::None) m_error = error;
    return PopStatus::Broken;
}

// Reads avail.idx once. Acquire: the ring entries and descriptors of every
// chain below it are read after it. Pairs with the driver's write barrier
// before it stores avail.idx (§2.7.13.3.1; virtio_wmb in Linux's
// virtqueue_add_split). False (and the queue broken) on a jump.
bool Queue::refresh_avail_idx() {
    const auto idx = m_memory->load_acquire_u16(m_avail_ring.unchecked_add(2));  // in RAM since activate()
    if (!idx) {
        fail(QueueError::RingOutOfGuestMemory);
        return false;
    }
    // At most `size` chains can be outstanding (§2.7.6); more means a corrupt
    // index, and guessing which entries are real would be unsafe.
    if (static_cast<uint16_t>(*idx - m_next_avail) > m_size) {
        fail(QueueError::AvailIndexJump);
        return false;
    }
    m_avail_idx = *idx;
    return true;
}

// With EVENT_IDX: ask for a kick when the driver publishes slot m_next_avail
// (§2.7.10), then re-read avail.idx. The full fence orders our avail_event
// store before that read; it pairs with the driver's full barrier between
// storing avail.idx and reading avail_event (virtio_mb in Linux's
// virtqueue_kick_prepare_split). Without it both sides could miss each other
// and the kick is lost. Returns false when the queue broke.
bool Queue::publish_avail_event() {
    if (!m_avail_event_valid || m_avail_event != m_next_avail) {
        const Gpa at = m_used_ring.unchecked_add(kRingHeader + sizeof(vring_used_elem) * uint64_t{m_size});
        if (!m_memory->write_obj<uint16_t>(at, m_next_avail)) {
            fail(QueueError::UsedRingWriteFailed);
            return false;
        }
        m_avail_event = m_next_avail;
        m_avail_event_valid = true;
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }
    return refresh_avail_idx();
}

PopStatus Queue::pop(DescriptorChain& chain) {
    if (m_error != QueueError::None) return PopStatus::Broken;
    if (m_memory == nullptr) return PopStatus::Empty;
    if (m_avail_idx == m_next_avail) {
        if (!refresh_avail_idx()) return PopStatus::Broken;
        // Before reporting Empty with EVENT_IDX, make sure the driver will
        // kick for the next chain, so a device that simply pops until Empty
        // on every kick never stalls.
        if (m_avail_idx == m_next_avail && m_event_idx && !m_notifications_disabled && !publish_avail_event()) {
            return PopStatus::Broken;
        }
        if (m_avail_idx == m_next_avail) return PopStatus::Empty;
    }
    const Gpa slot =
        m_avail_ring.unchecked_add(kRingHeader + 2 * uint64_t{static_cast<uint16_t>(m_next_avail & (m_size - 1))});
    const auto head = m_memory->read_obj<uint16_t>(slot);
    if (!head) return fail(QueueError::RingOutOfGuestMemory);
    const QueueError error = read_chain(*head, chain);
    if (error != QueueError::None) return fail(error);
    ++m_next_avail;
    return PopStatus::Chain;
}

// Walks one chain (§2.7.5, §2.7.5.3). Each descriptor is copied out of guest
// memory once and only the copy is checked and used: the guest may rewrite
// the table meanwhile. Bounded: at most `size` hops in the descriptor table
// and `len / 16` in an indirect table; one more hop than entries is a loop.
QueueError Queue::read_chain(uint16_t head, DescriptorChain& chain) const {
    chain.m_memory = m_memory;
    chain.m_head = head;
    chain.m_buffers.clear();
    chain.m_readable_count = 0;
    chain.m_readable_bytes = 0;
    chain.m_writable_bytes = 0;
    if (head >= m_size) return QueueError::HeadIndexOutOfRange;

    Gpa table = m_desc_table;
    uint32_t entries = m_size;
    uint32_t visited = 0;
    bool in_indirect = false;
    bool writable_seen = false;
    uint16_t index = head;
    for (;;) {
        if (++visited > entries) return QueueError::ChainLoop;
        const auto desc = m_memory->read_obj<vring_desc>(table.unchecked_add(sizeof(vring_desc) * uint64_t{index}));
        if (!desc) return QueueError::BufferOutOfGuestMemory;  // not reached: tables are checked
        const uint16_t flags = desc->flags;
        if ((flags & ~kKnownDescFlags) != 0) return QueueError::UnknownDescriptorFlags;

        if ((flags & VRING_DESC_F_INDIRECT) != 0) {
            // §2.7.5.3.1/2: only if negotiated, never inside a table, never
            // with NEXT (so it ends the direct chain); WRITE on it is ignored.
            if (!m_indirect) return QueueError::IndirectNotNegotiated;
            if (in_indirect) return QueueError::NestedIndirect;
            if ((flags & VRING_DESC_F_NEXT) != 0) return QueueError::IndirectWithNext;
            const uint32_t len = desc->len;
            if (len == 0 || len % sizeof(vring_desc) != 0 || len / sizeof(vring_desc) > kMaxIndirectDescriptors) {
                return QueueError::IndirectBadLength;
            }
            if (!m_memory->contains(Gpa{desc->addr}, len)) return QueueError::BufferOutOfGuestMemory;
            table = Gpa{desc->addr};
            entries = static_cast<uint32_t>(len / sizeof(vring_desc));
            visited = 0;
            in_indirect = true;
            index = 0;  // an indirect table starts at entry 0 (§2.7.5.3)
            continue;
        }

        const bool writable = (flags & VRING_DESC_F_WRITE) != 0;
        if (writable) {
            writable_seen = true;
        } else if (writable_seen) {
            return QueueError::ReadableAfterWritable;  // §2.7.4.2
        }
        // A zero-length descriptor is legal but carries no bytes: it is not
        // recorded and its address is never checked or touched.
        const uint32_t len = desc->len;
        if (len != 0) {
            if (!m_memory->contains(Gpa{desc->addr}, len)) return QueueError::BufferOutOfGuestMemory;
            uint64_t& total = writable ? chain.m_writable_bytes : chain.m_readable_bytes;
            total += len;
            // §2.7.5: a chain is at most 2^32 bytes; keel checks each direction
            // so a used `len` (u32) and the device's arithmetic never overflow.
            if (total > UINT32_MAX) return QueueError::ChainTooLong;
            chain.m_buffers.push_back(GuestBuffer{Gpa{desc->addr}, len});
            if (!writable) ++chain.m_readable_count;
        }

        if ((flags & VRING_DESC_F_NEXT) == 0) return QueueError::None;
        if (desc->next >= entries) return QueueError::NextIndexOutOfRange;
        index = desc->next;
    }
}

bool Queue::add_used(uint16_t head_index, uint32_t len) {
    if (m_memory == nullptr || m_error != QueueError::None) return false;
    if (head_index >= m_size) {  // a device bug; the driver must not see it
        fail(QueueError::UsedRingWriteFailed);
        return false;
    }
    vring_used_elem elem{};
    elem.id = head_index;
    elem.len = len;
    const uint16_t slot = static_cast<uint16_t>(m_next_used & (m_size - 1));
    if (!m_memory->write_obj(m_used_ring.unchecked_add(kRingHeader + sizeof(vring_used_elem) * uint64_t{slot}), elem)) {
        fail(QueueError::UsedRingWriteFailed);
        return false;
    }
    ++m_next_used;
    // Release: the element, and everything the device wrote into the chain's
    // buffers, is visible before the new used.idx. Pairs with the driver's read
    // barrier after it reads used.idx (§2.7.13.3; virtio_rmb in Linux's
    // virtqueue_get_buf_ctx_split).
    if (!m_memory->store_release_u16(m_used_ring.unchecked_add(2), m_next_used)) {
        fail(QueueError::UsedRingWriteFailed);
        return false;
    }
    return true;
}

bool Queue::needs_notification() {
    if (m_memory == nullptr || m_error != QueueError::None) return false;
    // Full fence: our used.idx store (add_used) is globally visible before we
    // read the driver's flags / used_event. Pairs with the driver's full
    // barrier between writing used_event (or clearing NO_INTERRUPT) and
    // re-reading used.idx (virtio_mb in Linux's virtqueue_enable_cb_prepare /
    // virtqueue_poll). Otherwise each side can read the other's stale value
    // and the interrupt is lost.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    const uint16_t old_used = m_signalled_used;
    const bool old_valid = m_signalled_used_valid;
    m_signalled_used = m_next_used;
    m_signalled_used_valid = true;
    if (old_valid && old_used == m_next_used) return false;  // nothing new since the last check

    if (!m_event_idx) {
        const auto flags = m_memory->read_obj<uint16_t>(m_avail_ring);
        return flags && (*flags & VRING_AVAIL_F_NO_INTERRUPT) == 0;  // §2.7.7.1
    }
    const auto used_event =
        m_memory->read_obj<uint16_t>(m_avail_ring.unchecked_add(kRingHeader + 2 * uint64_t{m_size}));
    if (!used_event) return false;
    // The first check after activation has no `old`: notify (a spurious
    // interrupt is harmless, a missing one is not).
    return !old_valid || need_event(*used_event, m_next_used, old_used);
}

void Queue::disable_notification() {
    if (m_memory == nullptr || m_error != QueueError::None) return;
    m_notifications_disabled = true;
    // With EVENT_IDX the device suppresses kicks by not moving avail_event
    // (§2.7.10); without it, by VRING_USED_F_NO_NOTIFY (§2.7.7). Either way
    // only a hint: the driver may still kick.
    if (!m_event_idx) (void)m_memory->write_obj<uint16_t>(m_used_ring, VRING_USED_F_NO_NOTIFY);
}

bool Queue::enable_notification() {
    if (m_memory == nullptr || m_error != QueueError::None) return false;
    m_notifications_disabled = false;
    if (m_event_idx) {
        // Publishes avail_event = m_next_avail behind a full fence and re-reads
        // avail.idx (see publish_avail_event for the barrier pair).
        if (!publish_avail_event()) return false;
        return m_avail_idx != m_next_avail;
    }
    (void)m_memory->write_obj<uint16_t>(m_used_ring, 0);
    // Full fence: the cleared NO_NOTIFY flag is visible before we re-read
    // avail.idx. Pairs with the driver's full barrier between storing avail.idx
    // and reading used.flags (virtio_mb in virtqueue_kick_prepare_split).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!refresh_avail_idx()) return false;
    return m_avail_idx != m_next_avail;
}

std::string Queue::describe_state() const {
    if (m_memory == nullptr) return "inactive";
    const auto avail_flags = m_memory->read_obj<uint16_t>(m_avail_ring);
    const auto avail_idx = m_memory->read_obj<uint16_t>(m_avail_ring.unchecked_add(2));
    const auto used_idx = m_memory->read_obj<uint16_t>(m_used_ring.unchecked_add(2));
    const auto used_event = m_memory->read_obj<uint16_t>(m_avail_ring.unchecked_add(kRingHeader + 2 * uint64_t{m_size}));
    const auto value = [](const std::optional<uint16_t>& v) { return v ? std::to_string(*v) : std::string("?"); };
    // Driver's avail.idx / the device's next slot; the device's used index
    // (and what the ring holds); the driver's interrupt threshold; the
    // device's kick threshold.
    std::string out = "avail " + value(avail_idx) + "/" + std::to_string(m_next_avail) + " used " +
                      std::to_string(m_next_used);
    if (!used_idx || *used_idx != m_next_used) out += " (ring " + value(used_idx) + ")";
    if (m_event_idx) {
        out += " used_event " + value(used_event) + " avail_event " +
               (m_avail_event_valid ? std::to_string(m_avail_event) : std::string("unset"));
    } else {
        out += " avail_flags " + value(avail_flags);
    }
    out += " signalled " + (m_signalled_used_valid ? std::to_string(m_signalled_used) : std::string("never"));
    if (m_notifications_disabled) out += " kicks-off";
    if (m_error != QueueError::None) out += std::string(" broken: ") + describe(m_error);
    return out;
}

}  // namespace keel::virtio
