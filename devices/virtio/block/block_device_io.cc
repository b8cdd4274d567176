// VirtioBlock's request path, on the event-loop thread under m_mutex:
// kick -> pop chains -> parse -> DiskIo -> completion -> status byte and used
// ring -> used-buffer notification (virtio 1.2 §2.7, §5.2.6).

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "virtio/block/block_device.h"

namespace keel::block {
namespace {

constexpr uint64_t kSectorSize = 512;
// Rounds of "reap, resume throttled queues" per wakeup.
constexpr int kMaxRounds = 4;

}  // namespace

void VirtioBlock::on_kick(uint16_t index, uint64_t generation, uint64_t kicks) {
    const std::lock_guard lock(m_mutex);
    if (!m_active || m_broken || generation != m_generation || index >= m_queues.size()) return;
    QueueState& state = m_queues[index];
    const uint64_t own = state.self_kicked ? 1 : 0;
    state.self_kicked = false;
    if (kicks > own) m_notifications.fetch_add(1, std::memory_order_relaxed);
    process_queue(index);
    finish_work();
}

void VirtioBlock::on_completion(uint64_t generation) {
    const std::lock_guard lock(m_mutex);
    if (!m_active || generation != m_generation) return;
    m_io->acknowledge_completion_signal();
    finish_work();
}

void VirtioBlock::process_queue(uint16_t index) {
    QueueState& state = m_queues[index];
    if (state.queue == nullptr) return;
    virtio::Queue& queue = *state.queue;
    state.throttled = false;
    uint32_t budget = kBatch;
    // §2.7.10: drain with notifications disabled, then enable them and drain
    // again if the driver published more meanwhile; enable_notification()
    // closes the race with a kick the driver suppressed.
    for (;;) {
        queue.disable_notification();
        for (;;) {
            if (budget == 0) {
                // Come back on the next wakeup; notifications stay disabled.
                self_kick(state);
                return;
            }
            Slot* slot = acquire_slot();
            if (slot == nullptr) {
                // Every slot is in flight: completions resume this queue.
                state.throttled = true;
                return;
            }
            const virtio::PopStatus status = queue.pop(slot->chain);
            if (status != virtio::PopStatus::Chain) {
                release(*slot);
                if (status == virtio::PopStatus::Broken) fail_device(virtio::describe(queue.last_error()));
                if (status == virtio::PopStatus::Broken) return;
                break;
            }
            --budget;
            slot->queue = index;
            slot->generation = m_generation;
            start_request(*slot);
            if (m_broken) return;
        }
        if (!queue.enable_notification()) return;
    }
}

void VirtioBlock::finish_work() {
    uint32_t reaped = 0;
    for (int round = 0; round < kMaxRounds; ++round) {
        m_io->submit();
        const uint32_t done = m_io->reap(*this);
        reaped += done;
        if (done == 0 || m_broken) break;
        bool resumed = false;
        for (size_t i = 0; i < m_queues.size(); ++i) {
            if (!m_queues[i].throttled) continue;
            process_queue(static_cast<uint16_t>(i));
            resumed = true;
        }
        if (!resumed) break;
    }
    m_io->submit();
    if (m_io->in_flight() == 0) {
        // Everything completed inside this call (page-cache hits complete
        // during io_uring_submit), but each completion also signalled the
        // eventfd: clear it now instead of taking one more wakeup for
        // nothing. Safe: with nothing in flight no completion can be lost.
        if (reaped > 0) m_io->acknowledge_completion_signal();
        // A queue still throttled with nothing in flight would wait for a
        // completion that never comes: give it a wakeup of its own.
        for (QueueState& state : m_queues) {
            if (state.throttled) self_kick(state);
        }
    }
    signal_queues();
}

void VirtioBlock::start_request(Slot& slot) {
    m_requests.fetch_add(1, std::memory_order_relaxed);
    virtio::Reader readable = slot.chain.reader();
    virtio::Writer writable = slot.chain.writer();
    const BlockRequestError error = parse_block_request(readable, writable, m_limits, slot.request);
    if (error != BlockRequestError::None) {
        note_bad_request(describe(error));
        complete(slot, block_status_for(error));
        return;
    }
    BlockRequest& request = slot.request;
    switch (request.type) {
        case BlockRequestType::Read:
            start_transfer(slot, DiskOpType::Read);
            return;
        case BlockRequestType::Write:
            start_transfer(slot, DiskOpType::Write);
            return;
        case BlockRequestType::Flush:
            slot.type = DiskOpType::Flush;
            slot.offset = 0;
            slot.length = 0;
            slot.iov_count = 0;
            m_io->enqueue(slot);
            break;
        case BlockRequestType::GetId:
            // parse_block_request() checked the buffer holds VIRTIO_BLK_ID_BYTES.
            complete(slot, request.data_in.write(m_id) ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR);
            return;
        case BlockRequestType::Discard:
        case BlockRequestType::WriteZeroes:
            slot.next_segment = 0;
            if (!start_next_segment(slot)) complete(slot, VIRTIO_BLK_S_OK);  // only empty segments
            return;
    }
    m_in_flight_max.store(std::max<uint64_t>(m_in_flight_max.load(std::memory_order_relaxed), m_io->in_flight()),
                          std::memory_order_relaxed);
}

void VirtioBlock::start_transfer(Slot& slot, DiskOpType type) {
    BlockRequest& request = slot.request;
    if (request.data_bytes == 0) {
        complete(slot, VIRTIO_BLK_S_OK);
        return;
    }
    size_t bytes = 0;
    const size_t count = type == DiskOpType::Read
                             ? request.data_in.fill_iovecs(request.data_bytes, slot.iovecs, bytes)
                             : request.data_out.fill_iovecs(request.data_bytes, slot.iovecs, bytes);
    if (bytes != request.data_bytes) {
        note_bad_request("more data buffers than seg_max");
        complete(slot, VIRTIO_BLK_S_IOERR);
        return;
    }
    slot.type = type;
    slot.offset = request.sector * kSectorSize;  // parse_block_request() checked the range
    slot.length = request.data_bytes;
    slot.iov = slot.iovecs.data();
    slot.iov_count = static_cast<uint32_t>(count);
    m_io->enqueue(slot);
    m_in_flight_max.store(std::max<uint64_t>(m_in_flight_max.load(std::memory_order_relaxed), m_io->in_flight()),
                          std::memory_order_relaxed);
}

bool VirtioBlock::start_next_segment(Slot& slot) {
    const BlockRequest& request = slot.request;
    while (slot.next_segment < request.segment_count) {
        const BlockSegment& segment = request.segments[slot.next_segment++];
        if (segment.num_sectors == 0) continue;
        if (request.type == BlockRequestType::Discard) {
            slot.type = DiskOpType::Discard;
        } else {
            slot.type =
                segment.unmap && m_image.can_punch_holes() ? DiskOpType::WriteZeroesUnmap : DiskOpType::WriteZeroes;
        }
        slot.offset = segment.sector * kSectorSize;
        slot.length = uint64_t{segment.num_sectors} * kSectorSize;
        slot.iov_count = 0;
        m_io->enqueue(slot);
        return true;
    }
    return false;
}

void VirtioBlock::disk_io_complete(DiskIoOp& op, int64_t result) {
    Slot& slot = static_cast<Slot&>(op);
    if (!m_active || m_broken || slot.generation != m_generation) {
        // Reset (or broken) while the host worked: the driver no longer owns
        // this chain, so nothing goes into the rings.
        release(slot);
        return;
    }
    if (result < 0) {
        note_io_error(result);
        complete(slot, VIRTIO_BLK_S_IOERR);
        return;
    }
    BlockRequest& request = slot.request;
    switch (request.type) {
        case BlockRequestType::Read: {
            // A read past the end of the file (it shrank under us) returns
            // fewer bytes: the rest reads as zeros.
            const uint64_t got = std::min(static_cast<uint64_t>(result), request.data_bytes);
            request.data_in.commit(got);
            if (got < request.data_bytes) (void)request.data_in.fill_zero(request.data_bytes - got);
            m_read_bytes.fetch_add(request.data_bytes, std::memory_order_relaxed);
            break;
        }
        case BlockRequestType::Write:
            m_written_bytes.fetch_add(request.data_bytes, std::memory_order_relaxed);
            break;
        case BlockRequestType::Flush:
            m_flushes.fetch_add(1, std::memory_order_relaxed);
            break;
        case BlockRequestType::GetId:
            break;
        case BlockRequestType::Discard:
        case BlockRequestType::WriteZeroes:
            if (start_next_segment(slot)) return;
            (request.type == BlockRequestType::Discard ? m_discards : m_write_zeroes)
                .fetch_add(1, std::memory_order_relaxed);
            break;
    }
    complete(slot, VIRTIO_BLK_S_OK);
}

void VirtioBlock::complete(Slot& slot, uint8_t status) {
    BlockRequest& request = slot.request;
    // No status byte (NoStatusByte): nothing to write, used length 0.
    (void)request.status.write_obj(status);
    // Both parts lie in the chain's writable bytes, which Queue::pop()
    // bounds by 2^32 - 1.
    const auto len = static_cast<uint32_t>(request.data_in.bytes_written() + request.status.bytes_written());
    QueueState& state = m_queues[slot.queue];
    const uint16_t head = slot.chain.head_index();
    release(slot);
    if (!state.queue->add_used(head, len)) {
        fail_device(virtio::describe(state.queue->last_error()));
        return;
    }
    state.used_added = true;
}

VirtioBlock::Slot* VirtioBlock::acquire_slot() {
    if (!m_free.empty()) {
        Slot* slot = m_free.back();
        m_free.pop_back();
        return slot;
    }
    if (m_slots.size() >= std::min(kMaxInFlight, m_io->queue_depth())) return nullptr;
    m_slots.push_back(std::make_unique<Slot>());
    return m_slots.back().get();
}

void VirtioBlock::release(Slot& slot) {
    m_free.push_back(&slot);
}

void VirtioBlock::signal_queues() {
    if (m_broken) return;
    for (size_t i = 0; i < m_queues.size(); ++i) {
        QueueState& state = m_queues[i];
        if (!state.used_added) continue;
        state.used_added = false;
        // §2.7.10: VRING_AVAIL_F_NO_INTERRUPT or used_event decide.
        if (!state.queue->needs_notification()) continue;
        m_interrupts.fetch_add(1, std::memory_order_relaxed);
        m_notifier->signal_used_queue(static_cast<uint16_t>(i));
    }
}

void VirtioBlock::self_kick(QueueState& state) {
    const uint64_t one = 1;
    state.self_kicked = true;
    [[maybe_unused]] const ssize_t n = ::write(state.kick_fd, &one, sizeof one);
}

void VirtioBlock::fail_device(const char* reason) {
    if (m_broken) return;
    m_broken = true;
    m_errors.fetch_add(1, std::memory_order_relaxed);
    if (!m_logged_failure) {
        m_logged_failure = true;
        spdlog::warn("virtio-blk {}: driver error ({}); the device stops until it is reset", m_name, reason);
    }
    // Notifiers never take a lock (transport_core.h), so this is safe under m_mutex.
    m_notifier->set_needs_reset();
}

void VirtioBlock::note_bad_request(const char* what) {
    m_errors.fetch_add(1, std::memory_order_relaxed);
    if (m_logged_bad_request) return;
    m_logged_bad_request = true;
    spdlog::warn("virtio-blk {}: bad request from the driver ({}); answered with an error (logged once)", m_name, what);
}

void VirtioBlock::note_io_error(int64_t error) {
    m_errors.fetch_add(1, std::memory_order_relaxed);
    if (m_logged_io_error) return;
    m_logged_io_error = true;
    spdlog::warn("virtio-blk {}: I/O error on '{}': {} (the guest gets IOERR; logged once)", m_name, m_image.path(),
                 std::strerror(static_cast<int>(-error)));
}

}  // namespace keel::block
