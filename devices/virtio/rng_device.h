#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "bus/event_registry.h"
#include "memory/guest_memory.h"
#include "virtio/queue/descriptor_chain.h"
#include "virtio/queue/queue.h"
#include "virtio/virtio_device.h"

namespace keel::virtio {

// Fills `buffer` with random bytes; returns how many (possibly fewer) or
// -errno, like getrandom(2). Replaceable for tests.
using EntropySource = std::function<ssize_t(std::span<uint8_t>)>;
// getrandom(2) with GRND_NONBLOCK, retrying EINTR a few times: -EAGAIN
// instead of blocking the event loop when the host pool is not ready yet.
[[nodiscard]] ssize_t getrandom_nonblocking(std::span<uint8_t> buffer);

// virtio-rng / entropy device (virtio 1.2 §5.4): one request queue whose
// chains are device-writable buffers; the device fills them with random
// bytes and returns the number written as the used length. No config space,
// no device-specific features.
//
// Threads: activate()/reset() come from a vCPU thread (under the transport's
// lock), the kick handler runs on the event-loop thread. Both take m_mutex;
// the handler re-checks m_active under it, so a handler that runs once more
// after reset() (event_registry.h) does nothing. EventRegistry add/remove are
// called without m_mutex held, so the loop's own locking can never deadlock
// against a running handler.
class RngDevice final : public VirtioDevice {
public:
    static constexpr uint16_t kQueueSize = 256;
    // At most this much entropy per request, so one chain (up to 4 GiB of
    // writable buffers) cannot make keel spend unbounded time; the driver
    // sees a short used length and asks again.
    static constexpr size_t kMaxBytesPerRequest = 64 * 1024;
    // Chains served per event-loop wakeup; the rest are served on the next
    // wakeup (the device re-signals its own kick fd), so other devices get
    // the loop in between.
    static constexpr size_t kMaxChainsPerWakeup = 2 * kQueueSize;

    explicit RngDevice(EntropySource source = getrandom_nonblocking);

    [[nodiscard]] uint32_t device_type() const override;
    [[nodiscard]] std::string_view name() const override { return "rng"; }
    [[nodiscard]] std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize}; }
    [[nodiscard]] uint64_t device_features() const override;

    // §5.4.4: no device configuration space. Reads are zeros.
    void read_config(uint64_t offset, std::span<uint8_t> data) const override;
    void write_config(uint64_t offset, std::span<const uint8_t> data) override;

    [[nodiscard]] bool activate(const ActivationContext& context) override;
    void reset() override;

    // "requests", "bytes", "errors", "used_notifications" (used-buffer notifications sent).
    [[nodiscard]] std::vector<DeviceCounter> counters() const override;

private:
    void on_kick(int fd);
    void process_locked();
    [[nodiscard]] bool serve_locked();
    void fail_locked(const char* reason);
    void note_entropy_error_locked(ssize_t error);

    EntropySource m_source;

    std::mutex m_mutex;
    bool m_active = false;  // an activation exists and the queue is usable
    bool m_broken = false;  // the driver broke the protocol: wait for reset
    bool m_subscribed = false;
    bool m_logged_failure = false;
    bool m_logged_entropy = false;
    Queue* m_queue = nullptr;
    VirtioNotifier* m_notifier = nullptr;
    EventRegistry* m_events = nullptr;
    int m_kick_fd = -1;
    DescriptorChain m_chain;               // reused: no allocation per request once warm
    std::array<uint8_t, 4096> m_buffer{};  // entropy bounce buffer

    std::atomic<uint64_t> m_requests{0};
    std::atomic<uint64_t> m_bytes{0};
    std::atomic<uint64_t> m_errors{0};
    std::atomic<uint64_t> m_notifications{0};
};

}  // namespace keel::virtio
