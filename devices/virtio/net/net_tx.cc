// VirtioNet's transmit path (virtio 1.2 §5.1.6.2), on the event-loop thread
// under m_mutex: transmit chain -> iovecs over guest memory -> one writev to
// the pair's backend fd -> used ring. A frame the backend cannot take yet
// (EAGAIN/ENOBUFS) waits in the device and is retried from a timerfd.

#include <spdlog/spdlog.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "virtio/net/net_device.h"

namespace keel::virtio {

void VirtioNet::process_tx(size_t index, bool from_timer) {
    Pair& pair = m_pairs[index];
    TxState& tx = pair.tx;
    if (tx.queue == nullptr) return;
    Queue& queue = *tx.queue;
    if (tx.pending && !retry_pending(pair, from_timer)) return;

    uint32_t budget = kBatch;
    // §2.7.10: drain with notifications disabled, then enable them and drain
    // again if the driver published more meanwhile; enable_notification()
    // closes the race with a kick the driver suppressed.
    for (;;) {
        queue.disable_notification();
        for (;;) {
            if (budget == 0) {
                // Come back on the next wakeup; notifications stay disabled.
                self_kick(tx.kick_fd);
                return;
            }
            const PopStatus status = queue.pop(tx.chain);
            if (status == PopStatus::Empty) break;
            if (status == PopStatus::Broken) {
                fail_device(describe(queue.last_error()));
                return;
            }
            --budget;
            if (!serve_tx_chain(pair)) return;  // broken, or waiting for the backend
        }
        if (!queue.enable_notification()) return;
    }
}

// The frame that found the backend full, once more. True when it is done
// (sent or dropped) and the queue may go on.
bool VirtioNet::retry_pending(Pair& pair, bool from_timer) {
    TxState& tx = pair.tx;
    if (from_timer) ++tx.retries;
    switch (send_frame(tx_fd(pair), tx.chain)) {
        case SendResult::Again:
            if (!from_timer) return false;  // the armed timer comes back
            if (tx.retries < kTxRetries && arm_tx_timer(tx)) return false;
            m_tx_dropped.fetch_add(1, std::memory_order_relaxed);
            break;
        case SendResult::Dropped:
            m_tx_dropped.fetch_add(1, std::memory_order_relaxed);
            break;
        case SendResult::Sent:
            m_tx_packets.fetch_add(1, std::memory_order_relaxed);
            m_tx_bytes.fetch_add(tx.chain.readable_bytes() - kHeaderSize, std::memory_order_relaxed);
            break;
    }
    tx.pending = false;
    tx.retries = 0;
    disarm_tx_timer(tx);
    return add_used(*tx.queue, tx.chain.head_index(), 0, tx.used_added);
}

// One chain just popped into tx.chain. False when the queue must stop: the
// device broke, or the frame waits for the backend.
bool VirtioNet::serve_tx_chain(Pair& pair) {
    TxState& tx = pair.tx;
    const DescriptorChain& chain = tx.chain;
    // §5.1.6.2: a transmit chain is device-readable only: the header, then a
    // frame. Anything else is a driver bug, not a reason to stop the device.
    const uint64_t readable = chain.readable_bytes();
    if (chain.writable_bytes() != 0 || readable <= kHeaderSize || readable > kHeaderSize + kMaxTxFrame) {
        note_driver_error(chain.writable_bytes() != 0 ? "transmit chain with a device-writable part"
                          : readable <= kHeaderSize   ? "transmit chain without a frame"
                                                      : "transmit frame above 64 KiB");
        return add_used(*tx.queue, chain.head_index(), 0, tx.used_added);
    }
    switch (send_frame(tx_fd(pair), chain)) {
        case SendResult::Sent:
            m_tx_packets.fetch_add(1, std::memory_order_relaxed);
            m_tx_bytes.fetch_add(readable - kHeaderSize, std::memory_order_relaxed);
            break;
        case SendResult::Dropped:
            m_tx_dropped.fetch_add(1, std::memory_order_relaxed);
            break;
        case SendResult::Again:
            tx.retries = 0;
            if (arm_tx_timer(tx)) {
                // The used ring stays untouched: the chain is still the device's.
                tx.pending = true;
                return false;
            }
            m_tx_dropped.fetch_add(1, std::memory_order_relaxed);
            break;
    }
    // Nothing was written into the chain (§2.7.8: len counts written bytes).
    return add_used(*tx.queue, chain.head_index(), 0, tx.used_added);
}

// writev of the whole chain (header as the guest wrote it, then the frame):
// one frame per call on a TAP or SOCK_SEQPACKET fd.
VirtioNet::SendResult VirtioNet::send_frame(int fd, const DescriptorChain& chain) {
    const size_t total = chain.readable_bytes();
    const Reader reader = chain.reader();
    size_t bytes = 0;
    size_t count = reader.fill_iovecs(total, m_tx_iov, bytes);
    if (bytes != total) {
        // More buffers than kTxIovecs (Linux sends at most MAX_SKB_FRAGS + 2):
        // copy the frame into one buffer instead.
        Reader copy = reader;
        if (!copy.read(std::span(m_tx_bounce.get(), total))) return SendResult::Dropped;  // not reached
        m_tx_iov[0] = iovec{m_tx_bounce.get(), total};
        count = 1;
    }
    ssize_t n = -1;
    int error = 0;
    for (int attempt = 0; attempt < 4; ++attempt) {
        n = ::writev(fd, m_tx_iov.data(), static_cast<int>(count));
        error = n < 0 ? errno : 0;
        if (error != EINTR) break;
    }
    if (n < 0) {
        if (error == EAGAIN || error == EWOULDBLOCK || error == ENOBUFS || error == EINTR) return SendResult::Again;
        note_backend_error("writing a frame", error);
        return SendResult::Dropped;
    }
    // A frame is written whole or not at all; anything else is not a frame
    // the peer can use.
    return static_cast<size_t>(n) == total ? SendResult::Sent : SendResult::Dropped;
}

bool VirtioNet::arm_tx_timer(TxState& tx) {
    // kTxRetryDelay, 2x, 4x, ... : about 51 ms over kTxRetries attempts.
    const auto delay = std::chrono::nanoseconds(kTxRetryDelay) * (int64_t{1} << std::min<uint32_t>(tx.retries, 20));
    itimerspec spec{};
    spec.it_value.tv_sec = static_cast<time_t>(delay.count() / 1'000'000'000);
    spec.it_value.tv_nsec = static_cast<long>(delay.count() % 1'000'000'000);
    if (::timerfd_settime(tx.timer.get(), 0, &spec, nullptr) == 0) {
        tx.timer_armed = true;
        return true;
    }
    // Cannot happen with a valid timerfd and delay; without a timer the
    // frame would wait for a kick that may never come, so the caller drops it.
    note_backend_error("arming the transmit retry timer", errno);
    tx.timer_armed = false;
    return false;
}

void VirtioNet::disarm_tx_timer(TxState& tx) {
    if (!tx.timer_armed) return;
    const itimerspec zero{};
    (void)::timerfd_settime(tx.timer.get(), 0, &zero, nullptr);
    tx.timer_armed = false;
}

}  // namespace keel::virtio
