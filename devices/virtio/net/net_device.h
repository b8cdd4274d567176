#pragma once

#include <sys/uio.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "bus/event_registry.h"
#include "common/fd.h"
#include "virtio/net/net_backend.h"
#include "virtio/net/net_rx_filter.h"
#include "virtio/net/virtio_net_uapi.h"
#include "virtio/queue/descriptor_chain.h"
#include "virtio/queue/queue.h"
#include "virtio/virtio_device.h"

namespace keel::virtio {

struct NetDeviceConfig {
    std::string name = "net0";  // logs and --stats
    std::array<uint8_t, 6> mac{};
    uint16_t mtu = 1500;
};

// virtio-net (virtio 1.2 §5.1) over a NetBackend (a TAP in keel).
//
// Queues: rx0, tx0, rx1, tx1, ..., then the control queue (§5.1.2). Without
// VIRTIO_NET_F_MQ negotiated the driver uses one pair and the control queue
// is queue 2. Only the first pair receives until VQ_PAIRS_SET enables more;
// transmit queues are served whenever the driver enabled them (the spec only
// restricts the device's use of receive queues).
//
// TX: each chain is [virtio_net_hdr_v1][frame], written to the pair's backend
// fd with one writev (the header as the guest wrote it). A chain that is not
// a frame (a writable part, at most the header, more than kMaxTxFrame bytes
// of frame) is returned with used length 0 and counted in "errors"; the
// device keeps running. When the backend says EAGAIN/ENOBUFS the chain is
// kept and retried by a per-pair timerfd (the event loop only reports
// readability), after kTxRetryDelay, doubling, kTxRetries times; then the
// frame is dropped ("tx_dropped") and the queue moves on, so a stuck backend
// costs a bounded delay per frame and never a busy loop. Other write errors
// drop the frame at once.
//
// RX: a frame is read from the backend only when the driver has a buffer for
// it (at least one chain popped), into a per-pair buffer allocated once.
// Without MRG_RXBUF one chain must hold header and frame; a smaller one gets
// the frame dropped ("rx_dropped") and is returned with length 0 (§5.1.6.3.1:
// the driver must post big enough buffers). With MRG_RXBUF the frame is
// spread over as many chains as needed and num_buffers says how many. When
// the driver has no (or not enough) buffers the frame stays in the device,
// the backend fd is unsubscribed and the next kick of that receive queue
// delivers it, so no frame the backend delivered is lost and nothing spins.
// Chains that cannot be receive buffers (a readable part, fewer writable
// bytes than the header) are driver errors: returned with length 0 and
// counted in "errors". Headers from the backend are checked against the
// offloads the driver accepts now (sanitize_rx_header). Frames the driver's
// receive filter refuses (NetRxFilter: destination MAC, VLAN) are read and
// counted in "rx_filtered", never placed.
//
// A queue protocol violation reported by Queue (or a used ring that cannot
// be written) stops the device until reset and asks for DEVICE_NEEDS_RESET.
//
// Threads: register accesses, activate() and reset() come from vCPU threads
// (under the transport's lock); kick, backend and timer handlers run on the
// event-loop thread. m_mutex guards the device state; handlers re-check the
// activation generation under it, so one running late after reset() does
// nothing. EventRegistry add/remove are never called with m_mutex held (as
// in RngDevice): they happen under m_watch_mutex, which is always taken
// before m_mutex, so the registry's own lock can never deadlock against a
// running handler, and subscriptions are changed by one thread at a time.
//
// Offloads: activate() hands the negotiated GUEST_* offloads to the backend
// (set_offloads, 0 when none); reset() sets them back to 0, so an idle
// backend hands out only plain frames.
class VirtioNet final : public VirtioDevice {
public:
    static constexpr uint16_t kQueueSize = 256;
    // Pairs a backend may have (2 * 64 + 1 queues, an RX buffer per pair).
    static constexpr size_t kMaxQueuePairs = 64;
    static constexpr size_t kHeaderSize = sizeof(virtio_net_hdr_v1);
    // Largest frame (after the header) the guest may send: a 64 KiB GSO frame.
    static constexpr size_t kMaxTxFrame = 64 * 1024;
    // Per-pair receive buffer, header included. A read that fills it may have
    // been truncated, so such a frame is dropped; a TAP frame (64 KiB GSO
    // frame plus link headers) always fits.
    static constexpr size_t kRxBufferSize = 68 * 1024;
    // Frames or commands per queue per event-loop wakeup, so one busy queue
    // cannot hold the loop; the rest wait for the next wakeup.
    static constexpr uint32_t kBatch = 64;
    static constexpr uint32_t kTxRetries = 10;
    static constexpr std::chrono::microseconds kTxRetryDelay{50};
    // iovecs per TX writev; longer chains are copied into one buffer first.
    static constexpr size_t kTxIovecs = 64;

    // Throws keel::Error when the backend has no queue pair or more than
    // kMaxQueuePairs, the MAC is a multicast or all-zero address, the MTU is
    // below 68, or a timerfd cannot be created.
    VirtioNet(NetDeviceConfig config, std::unique_ptr<NetBackend> backend);
    ~VirtioNet() override;
    VirtioNet(const VirtioNet&) = delete;
    VirtioNet& operator=(const VirtioNet&) = delete;

    [[nodiscard]] uint32_t device_type() const override;
    [[nodiscard]] std::string_view name() const override { return m_name; }
    [[nodiscard]] std::vector<uint16_t> queue_max_sizes() const override;
    [[nodiscard]] uint64_t device_features() const override { return m_features; }

    // struct virtio_net_config (§5.1.4): mac, status (link always up),
    // max_virtqueue_pairs, mtu. Driver writes are ignored (mac is read-only
    // in virtio 1.x; VIRTIO_NET_CTRL_MAC_ADDR_SET changes it).
    void read_config(uint64_t offset, std::span<uint8_t> data) const override;
    void write_config(uint64_t offset, std::span<const uint8_t> data) override;

    [[nodiscard]] bool activate(const ActivationContext& context) override;
    void reset() override;

    // "rx_packets", "rx_bytes", "rx_dropped", "rx_filtered", "tx_packets", "tx_bytes",
    // "tx_dropped", "errors" (driver errors: bad chains, malformed control
    // commands, protocol violations; and backend read errors),
    // "ctrl_commands", "used_notifications" (used-buffer notifications sent).
    // Byte counts exclude the virtio-net header.
    [[nodiscard]] std::vector<DeviceCounter> counters() const override;

    // What the driver configured (any thread).
    [[nodiscard]] std::array<uint8_t, 6> mac() const;
    [[nodiscard]] NetRxFilter rx_filter() const;
    [[nodiscard]] size_t active_queue_pairs() const;
    [[nodiscard]] unsigned guest_offloads() const;  // TUN_F_* last handed to the backend
    [[nodiscard]] size_t queue_pairs() const { return m_pairs.size(); }

private:
    struct RxState {
        Queue* queue = nullptr;
        int kick_fd = -1;
        // Chains popped for the frame being placed, in order; reused.
        std::vector<DescriptorChain> held;
        size_t held_count = 0;
        uint64_t held_bytes = 0;           // writable bytes of the held chains
        std::unique_ptr<uint8_t[]> frame;  // kRxBufferSize bytes
        size_t frame_len = 0;              // 0: no frame pending
        bool want_watch = false;           // the backend fd should be subscribed
        bool watched = false;              // it is (changed under m_watch_mutex only)
        bool used_added = false;
    };
    struct TxState {
        Queue* queue = nullptr;
        int kick_fd = -1;
        UniqueFd timer;
        DescriptorChain chain;  // reused; holds the chain waiting for the backend
        bool pending = false;
        bool timer_armed = false;
        uint32_t retries = 0;
        bool used_added = false;
    };
    struct Pair {
        int backend_fd = -1;
        // The backend steers frames to this pair's queue (set_queue_attached);
        // a detached pair transmits through pair 0's fd.
        bool backend_attached = true;
        RxState rx;
        TxState tx;
    };
    struct CtrlState {
        Queue* queue = nullptr;
        int kick_fd = -1;
        DescriptorChain chain;
        bool used_added = false;
    };
    enum class HandlerKind : uint8_t { Kick, Backend, Timer };
    enum class TakeResult : uint8_t { Chain, Skipped, Empty, Broken };
    enum class ReadResult : uint8_t { Frame, Dropped, Nothing };
    enum class SendResult : uint8_t { Sent, Again, Dropped };
    struct WatchChange {
        size_t pair = 0;
        bool add = false;
    };

    // Handlers capture `this` and one token (generation << 16 | index), so
    // their std::function needs no heap storage.
    [[nodiscard]] EventRegistry::Handler make_handler(HandlerKind kind, uint64_t generation, size_t index);
    void on_kick(uint64_t token);
    void on_backend_readable(uint64_t token);
    void on_tx_timer(uint64_t token);
    // Ends a handler's locked section: used-buffer notifications; true when
    // backend subscriptions must change.
    [[nodiscard]] bool finish_locked();
    void sync_watches();
    void sync_watches_with_watch_lock();
    void mark_watch(RxState& rx, bool want);
    void clear_activation_locked();

    // RX (net_rx.cc).
    void process_rx(size_t index);
    [[nodiscard]] TakeResult take_rx_chain(RxState& rx);
    [[nodiscard]] bool starve_rx(RxState& rx);
    [[nodiscard]] ReadResult read_frame(Pair& pair);
    [[nodiscard]] bool place_frame(RxState& rx);
    [[nodiscard]] bool return_held(RxState& rx);

    // TX (net_tx.cc).
    void process_tx(size_t index, bool from_timer);
    [[nodiscard]] bool retry_pending(Pair& pair, bool from_timer);
    [[nodiscard]] bool serve_tx_chain(Pair& pair);
    [[nodiscard]] SendResult send_frame(int fd, const DescriptorChain& chain);
    [[nodiscard]] bool arm_tx_timer(TxState& tx);
    void disarm_tx_timer(TxState& tx);

    // Control queue (net_ctrl.cc).
    void process_ctrl();
    [[nodiscard]] bool serve_ctrl_chain();
    [[nodiscard]] uint8_t run_ctrl_command(uint8_t cls, uint8_t cmd, Reader& data);
    [[nodiscard]] uint8_t ctrl_rx(uint8_t cmd, Reader& data);
    [[nodiscard]] uint8_t ctrl_mac(uint8_t cmd, Reader& data);
    [[nodiscard]] uint8_t ctrl_vlan(uint8_t cmd, Reader& data);
    [[nodiscard]] uint8_t ctrl_mq(uint8_t cmd, Reader& data);
    [[nodiscard]] uint8_t ctrl_guest_offloads(uint8_t cmd, Reader& data);
    void set_active_pairs(size_t pairs);
    [[nodiscard]] bool attach_backend_queues(size_t active_pairs);
    [[nodiscard]] int tx_fd(const Pair& pair) const { return pair.backend_attached ? pair.backend_fd : m_pairs[0].backend_fd; }

    [[nodiscard]] bool has(unsigned feature) const { return (m_acked & (uint64_t{1} << feature)) != 0; }
    [[nodiscard]] bool add_used(Queue& queue, uint16_t head, uint32_t len, bool& used_added);
    void self_kick(int fd);
    void fail_device(const char* reason);
    void note_driver_error(const char* what);
    void note_backend_error(const char* what, int error);

    // Immutable after construction.
    std::string m_name;
    std::unique_ptr<NetBackend> m_backend;
    uint16_t m_mtu;
    uint64_t m_features;
    std::array<uint8_t, 6> m_config_mac;

    std::mutex m_watch_mutex;  // taken before m_mutex; serialises EventRegistry calls
    mutable std::mutex m_mutex;
    bool m_active = false;
    bool m_broken = false;
    bool m_watch_dirty = false;
    bool m_logged_failure = false;
    bool m_logged_driver_error = false;
    bool m_logged_backend_error = false;
    uint64_t m_generation = 0;  // bumped by every activate() and reset()
    uint64_t m_acked = 0;
    size_t m_usable_pairs = 1;  // max_virtqueue_pairs with MQ negotiated, else 1
    size_t m_active_pairs = 1;
    size_t m_ctrl_index = SIZE_MAX;  // the control queue's index, when the driver uses one
    unsigned m_guest_offloads = 0;   // TUN_F_* the backend was last given
    MacAddress m_mac{};
    NetRxFilter m_rx_filter;
    VirtioNotifier* m_notifier = nullptr;
    EventRegistry* m_events = nullptr;
    std::vector<Pair> m_pairs;
    CtrlState m_ctrl;
    std::vector<int> m_subscribed;             // kick and timer fds added to m_events
    std::vector<WatchChange> m_watch_changes;  // guarded by m_watch_mutex; capacity for every pair
    std::array<iovec, kTxIovecs> m_tx_iov{};
    std::unique_ptr<uint8_t[]> m_tx_bounce;  // kHeaderSize + kMaxTxFrame bytes

    std::atomic<uint64_t> m_rx_packets{0};
    std::atomic<uint64_t> m_rx_bytes{0};
    std::atomic<uint64_t> m_rx_dropped{0};
    std::atomic<uint64_t> m_rx_filtered{0};
    std::atomic<uint64_t> m_tx_packets{0};
    std::atomic<uint64_t> m_tx_bytes{0};
    std::atomic<uint64_t> m_tx_dropped{0};
    std::atomic<uint64_t> m_errors{0};
    std::atomic<uint64_t> m_ctrl_commands{0};
    std::atomic<uint64_t> m_notifications{0};
};

}  // namespace keel::virtio
