#pragma once

#include <linux/virtio_blk.h>
#include <sys/uio.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "bus/event_registry.h"
#include "virtio/block/block_request.h"
#include "virtio/block/disk_image.h"
#include "virtio/block/disk_io.h"
#include "virtio/queue/descriptor_chain.h"
#include "virtio/queue/queue.h"
#include "virtio/virtio_device.h"

namespace keel::block {

// Request queues a disk offers at most (the builder gives one per vCPU up to this).
inline constexpr uint16_t kMaxBlockQueues = 16;

struct BlockDeviceConfig {
    std::string name = "blk";  // logs and --stats
    std::string serial;        // the GET_ID answer (at most VIRTIO_BLK_ID_BYTES)
    uint32_t num_queues = 1;   // clamped to 1..kMaxBlockQueues
    DiskIoEngine io = DiskIoEngine::Uring;
};

// virtio-blk (virtio 1.2 §5.2) over a DiskImage.
//
// Requests are parsed by parse_block_request() and run by a DiskIo engine
// (io_uring, or synchronous preadv/pwritev). A request is completed — status
// byte written, used ring entry added — only after the host I/O returned, so
// a FLUSH (fdatasync) covers every write the guest saw complete.
//
// Threads: activate()/reset() come from a vCPU thread (under the transport's
// lock); kick and completion handlers run on the event-loop thread. m_mutex
// guards everything; EventRegistry add/remove are called without it (as in
// RngDevice), and handlers re-check the activation generation under it, so
// one running late after reset() does nothing.
//
// Reset with I/O in flight: reset() WAITS for every operation the host is
// still running (DiskIo::wait_idle) before it returns, because the kernel
// may be writing into guest buffers the driver is about to reuse; those
// completions are dropped (their generation is stale), never written into
// the reset queues. A reset therefore takes as long as the slowest I/O.
//
// A protocol violation (a broken chain, a used ring that cannot be written)
// stops the device until reset and asks for DEVICE_NEEDS_RESET; malformed
// requests inside a valid chain only get IOERR/UNSUPP. Both are counted and
// logged once per device.
class VirtioBlock final : public virtio::VirtioDevice, private DiskIoClient {
public:
    static constexpr uint16_t kQueueSize = 256;
    // Data buffers per request (config seg_max) and bytes per buffer
    // (size_max). Linux splits its requests to fit.
    static constexpr uint32_t kSegMax = 128;
    static constexpr uint32_t kSizeMax = 1u << 20;
    // Requests handed to the host at once, over all queues: the io_uring
    // depth, and the number of request slots (allocated as first needed).
    static constexpr uint32_t kMaxInFlight = 128;
    // Chains taken from one queue per wakeup, so one busy queue cannot hold
    // the event loop; the rest wait for the next wakeup.
    static constexpr uint32_t kBatch = 64;
    // Per-segment limits for DISCARD/WRITE_ZEROES (2 GiB) and the segment count.
    static constexpr uint32_t kMaxDiscardSectors = 1u << 22;
    static constexpr uint32_t kMaxSegments = BlockRequest::kMaxSegments;

    // Opens options.path (DiskImage::open: throws keel::Error naming the
    // file) and serves it with `num_queues` queues (clamped to
    // 1..kMaxBlockQueues), named options.id ("blk" when empty).
    VirtioBlock(const DiskOptions& options, uint32_t num_queues);
    // The engine named by config.io (io_uring falls back to synchronous I/O).
    VirtioBlock(DiskImage image, BlockDeviceConfig config);
    // A given engine, for tests and benchmarks; `io` runs against image.fd().
    VirtioBlock(DiskImage image, BlockDeviceConfig config, std::unique_ptr<DiskIo> io);
    ~VirtioBlock() override;
    VirtioBlock(const VirtioBlock&) = delete;
    VirtioBlock& operator=(const VirtioBlock&) = delete;

    [[nodiscard]] uint32_t device_type() const override;
    [[nodiscard]] std::string_view name() const override { return m_name; }
    [[nodiscard]] std::vector<uint16_t> queue_max_sizes() const override;
    [[nodiscard]] uint64_t device_features() const override { return m_features; }

    // struct virtio_blk_config (§5.2.4); nothing in it is writable (no CONFIG_WCE).
    void read_config(uint64_t offset, std::span<uint8_t> data) const override;
    void write_config(uint64_t offset, std::span<const uint8_t> data) override;

    [[nodiscard]] bool activate(const virtio::ActivationContext& context) override;
    void reset() override;

    // "requests", "read_bytes", "written_bytes", "flushes", "discards",
    // "write_zeroes", "errors" (requests answered IOERR/UNSUPP, and protocol
    // violations), "driver_notifications" (kicks the device woke up for),
    // "used_notifications" (used-buffer notifications sent), "in_flight_max".
    // The transport adds "kicks", "interrupts", "resets", "needs_reset".
    [[nodiscard]] std::vector<virtio::DeviceCounter> counters() const override;

    // PATCH /drives/{id}: serve `path` from now on, opened with the same
    // access, or, when it is the file already open, read its size again. The
    // host I/O in flight on the old file completes first (normally: the guest
    // gets its answers); then an active driver gets a configuration change
    // notification and re-reads the capacity. Throws keel::Error naming the
    // file when it cannot be opened: the old one stays. Event-loop thread.
    void change_backing_file(const std::string& path);

    [[nodiscard]] DiskIoEngine engine() const { return m_io->engine(); }
    [[nodiscard]] const DiskImage& image() const { return m_image; }
    [[nodiscard]] uint16_t num_queues() const { return m_num_queues; }

private:
    // One request from pop() to completion. Slots are allocated as first
    // needed (at most kMaxInFlight) and reused; the DiskIoOp base is what the
    // engine hands back.
    struct Slot : DiskIoOp {
        virtio::DescriptorChain chain;
        BlockRequest request;
        std::array<iovec, kSegMax> iovecs{};
        uint64_t generation = 0;
        uint32_t next_segment = 0;
        uint16_t queue = 0;
    };
    struct QueueState {
        virtio::Queue* queue = nullptr;
        int kick_fd = -1;
        bool throttled = false;    // stopped for want of a slot; resumed by completions
        bool used_added = false;   // add_used() since the last notification check
        bool self_kicked = false;  // the batch limit re-signalled the kick fd
    };

    void on_kick(uint16_t index, uint64_t generation, uint64_t kicks);
    void on_completion(uint64_t generation);
    void process_queue(uint16_t index);
    void finish_work();
    void start_request(Slot& slot);
    void start_transfer(Slot& slot, DiskOpType type);
    [[nodiscard]] bool start_next_segment(Slot& slot);
    void disk_io_complete(DiskIoOp& op, int64_t result) override;
    void complete(Slot& slot, uint8_t status);
    void release(Slot& slot);
    [[nodiscard]] Slot* acquire_slot();
    void signal_queues();
    void self_kick(QueueState& state);
    void fail_device(const char* reason);
    void note_bad_request(const char* what);
    void note_io_error(int64_t error);

    // m_image, m_limits and m_config change with the backing file
    // (change_backing_file, on the event-loop thread): m_image and m_limits
    // under m_mutex, m_config under m_config_mutex, because vCPU threads read
    // it through the transport. The rest is immutable after construction.
    DiskImage m_image;
    std::string m_name;
    std::array<uint8_t, VIRTIO_BLK_ID_BYTES> m_id{};
    uint16_t m_num_queues;
    uint64_t m_features;
    BlockLimits m_limits;
    mutable std::mutex m_config_mutex;
    virtio_blk_config m_config{};

    mutable std::mutex m_mutex;
    bool m_active = false;
    bool m_broken = false;
    bool m_logged_failure = false;
    bool m_logged_bad_request = false;
    bool m_logged_io_error = false;
    uint64_t m_generation = 0;  // bumped by every activate() and reset()
    virtio::VirtioNotifier* m_notifier = nullptr;
    EventRegistry* m_events = nullptr;
    std::vector<int> m_subscribed;  // fds added to m_events
    std::vector<QueueState> m_queues;
    std::vector<std::unique_ptr<Slot>> m_slots;
    std::vector<Slot*> m_free;
    // Declared after the slots so it is destroyed first: its destructor
    // waits for operations that still point into them.
    std::unique_ptr<DiskIo> m_io;

    std::atomic<uint64_t> m_requests{0};
    std::atomic<uint64_t> m_read_bytes{0};
    std::atomic<uint64_t> m_written_bytes{0};
    std::atomic<uint64_t> m_flushes{0};
    std::atomic<uint64_t> m_discards{0};
    std::atomic<uint64_t> m_write_zeroes{0};
    std::atomic<uint64_t> m_errors{0};
    std::atomic<uint64_t> m_notifications{0};
    std::atomic<uint64_t> m_interrupts{0};
    std::atomic<uint64_t> m_in_flight_max{0};
};

}  // namespace keel::block
