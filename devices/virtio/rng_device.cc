#include "virtio/rng_device.h"

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#ifndef VIRTIO_RING_NO_LEGACY
#define VIRTIO_RING_NO_LEGACY  // its legacy vring_init() is not valid C++
#endif
#include <linux/virtio_ring.h>
#include <spdlog/spdlog.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace keel::virtio {

namespace {

constexpr uint64_t kFeatures =
    (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << VIRTIO_RING_F_INDIRECT_DESC);

void write_kick(int fd) {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(fd, &one, sizeof one);
}

}  // namespace

ssize_t getrandom_nonblocking(std::span<uint8_t> buffer) {
    // EINTR cannot repeat for ever in practice; the bound keeps the event
    // loop from spinning if it somehow did.
    for (int attempt = 0; attempt < 8; ++attempt) {
        const ssize_t n = ::getrandom(buffer.data(), buffer.size(), GRND_NONBLOCK);
        if (n >= 0) return n;
        if (errno != EINTR) return -errno;
    }
    return -EINTR;
}

RngDevice::RngDevice(EntropySource source) : m_source(std::move(source)) {}

uint32_t RngDevice::device_type() const {
    return VIRTIO_ID_RNG;
}

uint64_t RngDevice::device_features() const {
    return kFeatures;
}

void RngDevice::read_config(uint64_t /*offset*/, std::span<uint8_t> data) const {
    std::fill(data.begin(), data.end(), uint8_t{0});
}

void RngDevice::write_config(uint64_t /*offset*/, std::span<const uint8_t> /*data*/) {}

bool RngDevice::activate(const ActivationContext& context) {
    if (context.queues.size() != 1 || context.kick_fds.size() != 1) return false;
    const int fd = context.kick_fds[0];
    {
        const std::lock_guard lock(m_mutex);
        m_queue = &context.queues[0];
        m_notifier = &context.notifier;
        m_events = &context.events;
        m_kick_fd = fd;
        m_broken = false;
        m_logged_failure = false;
        m_logged_entropy = false;
        // A driver may leave the queue disabled (§2.7: not every queue must be
        // used); then the device simply never has work.
        m_active = m_queue->active();
        if (!m_active) return true;
    }
    // Outside m_mutex: see the class comment. A kick that arrived before
    // DRIVER_OK is still pending on the (level-triggered) fd and runs now.
    // add() may throw; the transport then sets DEVICE_NEEDS_RESET, and
    // reset() does not remove what was never added.
    context.events.add(fd, [this, fd] { on_kick(fd); });
    const std::lock_guard lock(m_mutex);
    m_subscribed = true;
    return true;
}

void RngDevice::reset() {
    int fd = -1;
    EventRegistry* events = nullptr;
    {
        const std::lock_guard lock(m_mutex);
        // From here on a handler that still runs sees !m_active and leaves
        // the queue alone; the transport resets the queue after we return.
        m_active = false;
        m_broken = false;
        m_queue = nullptr;
        m_notifier = nullptr;
        if (m_subscribed) {
            fd = m_kick_fd;
            events = m_events;
        }
        m_subscribed = false;
        m_kick_fd = -1;
    }
    if (events != nullptr) events->remove(fd);
}

void RngDevice::on_kick(int fd) {
    // Level-triggered: consume the kick first, so one arriving while we
    // drain makes the fd readable again.
    uint64_t count = 0;
    [[maybe_unused]] const ssize_t n = ::read(fd, &count, sizeof count);
    const std::lock_guard lock(m_mutex);
    if (!m_active || m_broken || fd != m_kick_fd) return;
    process_locked();
}

void RngDevice::process_locked() {
    bool completed = false;
    size_t budget = kMaxChainsPerWakeup;
    bool again = true;
    // §2.7.10: drain with notifications disabled, then re-enable and drain
    // again if the driver published more meanwhile (enable_notification
    // closes the race with a kick that was suppressed).
    while (again) {
        m_queue->disable_notification();
        for (;;) {
            if (budget == 0) {
                // Leave notifications disabled and come back on the next
                // wakeup; the self-kick keeps the fd readable.
                write_kick(m_kick_fd);
                again = false;
                break;
            }
            const PopStatus status = m_queue->pop(m_chain);
            if (status == PopStatus::Empty) break;
            if (status == PopStatus::Broken) {
                fail_locked(describe(m_queue->last_error()));
                return;
            }
            --budget;
            if (!serve_locked()) return;
            completed = true;
        }
        if (again) again = m_queue->enable_notification();
    }
    if (completed && m_queue->needs_notification()) {
        m_notifications.fetch_add(1, std::memory_order_relaxed);
        m_notifier->signal_used_queue(0);
    }
}

bool RngDevice::serve_locked() {
    // §5.4.6.1: requests are device-writable buffers only.
    if (m_chain.readable_bytes() != 0) {
        fail_locked("request with a device-readable buffer");
        return false;
    }
    Writer writer = m_chain.writer();
    const size_t want = std::min(writer.remaining(), kMaxBytesPerRequest);
    size_t done = 0;
    while (done < want) {
        const size_t chunk = std::min(want - done, m_buffer.size());
        const ssize_t got = m_source(std::span(m_buffer.data(), chunk));
        if (got <= 0) {
            // No entropy right now (-EAGAIN before the host pool is
            // initialised) or a host error: return what we have. A short (or
            // empty) answer is legal; the driver asks again.
            note_entropy_error_locked(got);
            break;
        }
        const size_t size = std::min(static_cast<size_t>(got), chunk);
        if (!writer.write(std::span<const uint8_t>(m_buffer.data(), size))) break;
        done += size;
    }
    // writer.bytes_written() <= kMaxBytesPerRequest, so it fits the used length.
    if (!m_queue->add_used(m_chain.head_index(), static_cast<uint32_t>(writer.bytes_written()))) {
        fail_locked(describe(m_queue->last_error()));
        return false;
    }
    m_requests.fetch_add(1, std::memory_order_relaxed);
    m_bytes.fetch_add(writer.bytes_written(), std::memory_order_relaxed);
    return true;
}

void RngDevice::fail_locked(const char* reason) {
    m_broken = true;
    m_errors.fetch_add(1, std::memory_order_relaxed);
    if (!m_logged_failure) {
        m_logged_failure = true;
        spdlog::warn("virtio rng: driver error ({}); the device needs a reset", reason);
    }
    // Lock order device -> notifier is fine: notifiers never take a lock.
    m_notifier->set_needs_reset();
}

void RngDevice::note_entropy_error_locked(ssize_t error) {
    if (error != -EAGAIN) m_errors.fetch_add(1, std::memory_order_relaxed);
    if (m_logged_entropy) return;
    m_logged_entropy = true;
    if (error == -EAGAIN) {
        spdlog::warn("virtio rng: host entropy pool not ready; the guest gets short answers");
    } else {
        spdlog::warn("virtio rng: getrandom failed: {}",
                     error < 0 ? std::strerror(static_cast<int>(-error)) : "no data");
    }
}

std::vector<DeviceCounter> RngDevice::counters() const {
    return {
        {"requests", m_requests.load(std::memory_order_relaxed)},
        {"bytes", m_bytes.load(std::memory_order_relaxed)},
        {"errors", m_errors.load(std::memory_order_relaxed)},
        {"used_notifications", m_notifications.load(std::memory_order_relaxed)},
    };
}

}  // namespace keel::virtio
