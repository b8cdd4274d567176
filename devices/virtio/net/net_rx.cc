// VirtioNet's receive path (virtio 1.2 §5.1.6.3, §5.1.6.4), on the event-loop
// thread under m_mutex: backend fd -> per-pair frame buffer -> receive
// chains -> used ring. A frame is read only when at least one receive chain
// is held for it; a frame that finds too few buffers waits in the device
// with the backend fd unsubscribed until the driver kicks the queue.

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "virtio/net/net_device.h"
#include "virtio/net/net_features.h"

namespace keel::virtio {

void VirtioNet::process_rx(size_t index) {
    Pair& pair = m_pairs[index];
    RxState& rx = pair.rx;
    // §5.1.6.5.5: no frames on receive queues beyond the active pairs.
    if (rx.queue == nullptr || index >= m_active_pairs) {
        mark_watch(rx, false);
        return;
    }
    Queue& queue = *rx.queue;
    const bool mergeable = has(VIRTIO_NET_F_MRG_RXBUF);
    // Kicks only matter when the device runs dry; starve_rx() turns them
    // back on then (§2.7.10).
    queue.disable_notification();
    uint32_t budget = kBatch;
    while (budget > 0) {
        const bool need_chain = rx.held_count == 0 || (mergeable && rx.frame_len != 0 && rx.held_bytes < rx.frame_len);
        if (need_chain) {
            if (rx.frame_len != 0 && rx.held_count >= queue.size()) {
                // The driver's whole ring cannot hold this frame: nothing it
                // can still post would help, so drop the frame.
                m_rx_dropped.fetch_add(1, std::memory_order_relaxed);
                rx.frame_len = 0;
                if (!return_held(rx)) return;
                --budget;
                continue;
            }
            switch (take_rx_chain(rx)) {
                case TakeResult::Chain:
                    continue;
                case TakeResult::Skipped:
                    --budget;
                    continue;
                case TakeResult::Empty:
                    if (starve_rx(rx)) continue;
                    return;
                case TakeResult::Broken:
                    return;
            }
        }
        if (rx.frame_len == 0) {
            switch (read_frame(pair)) {
                case ReadResult::Frame:
                    continue;  // enough buffers for it?
                case ReadResult::Dropped:
                    --budget;
                    continue;
                case ReadResult::Nothing:
                    return;
            }
        }
        if (!place_frame(rx)) return;
        --budget;
    }
    // Budget spent: the backend fd stays subscribed and, still readable,
    // brings us back on the next wakeup. A frame already read (waiting for
    // more chains after skipped ones) cannot count on that: the fd may have
    // nothing more to say, and kicks are off. Come back through a kick.
    mark_watch(rx, true);
    if (rx.frame_len != 0) self_kick(rx.kick_fd);
}

// Pops one chain into the held list. Chains that cannot be receive buffers
// are returned with length 0 (Skipped).
VirtioNet::TakeResult VirtioNet::take_rx_chain(RxState& rx) {
    Queue& queue = *rx.queue;
    if (rx.held_count >= rx.held.size()) return TakeResult::Empty;  // not reached: held_count <= queue size
    DescriptorChain& chain = rx.held[rx.held_count];
    const PopStatus status = queue.pop(chain);
    if (status == PopStatus::Empty) return TakeResult::Empty;
    if (status == PopStatus::Broken) {
        fail_device(describe(queue.last_error()));
        return TakeResult::Broken;
    }
    // §5.1.6.3.1: receive buffers are device-writable and hold at least the
    // header (also with MRG_RXBUF, where every buffer must).
    if (chain.readable_bytes() != 0 || chain.writable_bytes() < kHeaderSize) {
        note_driver_error(chain.readable_bytes() != 0 ? "receive buffer with a device-readable part"
                                                      : "receive buffer smaller than the header");
        return add_used(queue, chain.head_index(), 0, rx.used_added) ? TakeResult::Skipped : TakeResult::Broken;
    }
    rx.held_bytes += chain.writable_bytes();
    ++rx.held_count;
    return TakeResult::Chain;
}

// No chain for the frame: turn kicks on and look again (§2.7.10). True when
// the driver published more meanwhile; otherwise the backend fd is
// unsubscribed until the driver's next kick of this queue.
bool VirtioNet::starve_rx(RxState& rx) {
    Queue& queue = *rx.queue;
    if (queue.enable_notification()) {
        queue.disable_notification();
        return true;
    }
    if (queue.last_error() != QueueError::None) {
        fail_device(describe(queue.last_error()));
        return false;
    }
    mark_watch(rx, false);
    return false;
}

VirtioNet::ReadResult VirtioNet::read_frame(Pair& pair) {
    RxState& rx = pair.rx;
    ssize_t n = -1;
    int error = 0;
    // EINTR cannot repeat for ever in practice; the bound keeps the loop
    // from spinning if it somehow did.
    for (int attempt = 0; attempt < 4; ++attempt) {
        n = ::read(pair.backend_fd, rx.frame.get(), kRxBufferSize);
        error = n < 0 ? errno : 0;
        if (error != EINTR) break;
    }
    if (n < 0 && (error == EAGAIN || error == EWOULDBLOCK || error == EINTR)) {
        mark_watch(rx, true);  // a chain is held: wait for the next frame
        return ReadResult::Nothing;
    }
    if (n <= 0) {
        // The backend is gone (end of file) or broken: keep its fd out of
        // the loop, which would otherwise spin on it; the next kick of this
        // receive queue tries again.
        m_errors.fetch_add(1, std::memory_order_relaxed);
        note_backend_error(n == 0 ? "reading a frame: end of file" : "reading a frame", error);
        mark_watch(rx, false);
        return ReadResult::Nothing;
    }
    const auto size = static_cast<size_t>(n);
    // Shorter than the header: not a frame. As long as the buffer: maybe
    // truncated, and a truncated frame must not reach the guest.
    if (size < kHeaderSize || size >= kRxBufferSize) {
        m_rx_dropped.fetch_add(1, std::memory_order_relaxed);
        return ReadResult::Dropped;
    }
    virtio_net_hdr_v1 header{};
    std::memcpy(&header, rx.frame.get(), sizeof header);
    if (!sanitize_rx_header(header, m_guest_offloads)) {
        m_rx_dropped.fetch_add(1, std::memory_order_relaxed);
        return ReadResult::Dropped;
    }
    std::memcpy(rx.frame.get(), &header, sizeof header);
    if (!m_rx_filter.accepts(std::span<const uint8_t>(rx.frame.get() + kHeaderSize, size - kHeaderSize), m_mac)) {
        m_rx_filtered.fetch_add(1, std::memory_order_relaxed);
        return ReadResult::Dropped;
    }
    rx.frame_len = size;
    return ReadResult::Frame;
}

// Writes the pending frame into the held chains and returns them: one chain
// without MRG_RXBUF (the frame is dropped when it does not fit), all of them
// with it (process_rx() held enough). False when the device broke.
bool VirtioNet::place_frame(RxState& rx) {
    Queue& queue = *rx.queue;
    const size_t len = rx.frame_len;
    rx.frame_len = 0;
    if (!has(VIRTIO_NET_F_MRG_RXBUF) && rx.held[0].writable_bytes() < len) {
        m_rx_dropped.fetch_add(1, std::memory_order_relaxed);
        return return_held(rx);
    }
    // §5.1.6.4: num_buffers is the number of chains the frame uses (1
    // without MRG_RXBUF).
    const auto num_buffers = static_cast<uint16_t>(rx.held_count);  // <= queue size <= 256
    std::memcpy(rx.frame.get() + offsetof(virtio_net_hdr_v1, num_buffers), &num_buffers, sizeof num_buffers);
    size_t done = 0;
    const size_t count = rx.held_count;
    rx.held_count = 0;
    rx.held_bytes = 0;
    for (size_t i = 0; i < count; ++i) {
        const DescriptorChain& chain = rx.held[i];
        Writer writer = chain.writer();
        const size_t chunk = std::min<size_t>(len - done, writer.remaining());
        // Queue::pop() validated every buffer, so this write cannot fail.
        if (!writer.write(std::span<const uint8_t>(rx.frame.get() + done, chunk))) {
            fail_device("receive buffer outside guest memory");
            return false;
        }
        done += chunk;
        if (!add_used(queue, chain.head_index(), static_cast<uint32_t>(chunk), rx.used_added)) return false;
    }
    m_rx_packets.fetch_add(1, std::memory_order_relaxed);
    m_rx_bytes.fetch_add(len - kHeaderSize, std::memory_order_relaxed);
    return true;
}

// Returns every held chain unused (length 0). False when the device broke.
bool VirtioNet::return_held(RxState& rx) {
    const size_t count = rx.held_count;
    rx.held_count = 0;
    rx.held_bytes = 0;
    for (size_t i = 0; i < count; ++i) {
        if (!add_used(*rx.queue, rx.held[i].head_index(), 0, rx.used_added)) return false;
    }
    return true;
}

}  // namespace keel::virtio
