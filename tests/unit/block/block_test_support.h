#pragma once

// Shared set-up for the virtio-blk tests: temporary images, request builders,
// a device on fake rings (BlockRig), and a disk engine the test drives by hand
// (ManualDiskIo).

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#define VIRTIO_RING_NO_LEGACY
#include <linux/virtio_ring.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "memory/guest_memory.h"
#include "virtio/block/block_device.h"
#include "virtio/block/disk_image.h"
#include "virtio/block/disk_io.h"
#include "virtio/queue/queue.h"
#include "virtio_fakes/fake_driver_queue.h"
#include "virtio_fakes/fake_event_registry.h"
#include "virtio_fakes/fake_notifier.h"

namespace keel::test {

inline constexpr uint64_t kSector = 512;

// A temporary file in `dir`, `size` bytes of pattern(), removed at the end.
class TempImage {
public:
    explicit TempImage(uint64_t size, const std::string& dir = default_dir()) {
        std::string templ = dir + "/keel-blk-XXXXXX";
        const int fd = ::mkstemp(templ.data());
        if (fd < 0) throw std::runtime_error("mkstemp in " + dir + " failed");
        m_path = templ;
        UniqueFd owner(fd);
        const auto bytes = pattern(size, 1);
        if (!bytes.empty() && ::pwrite(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
            throw std::runtime_error("cannot fill " + m_path);
        }
    }
    ~TempImage() { ::unlink(m_path.c_str()); }
    TempImage(const TempImage&) = delete;
    TempImage& operator=(const TempImage&) = delete;

    static std::string default_dir() {
        const char* tmp = std::getenv("TMPDIR");
        return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
    }
    // Deterministic contents: byte i of a stream seeded `seed`.
    static std::vector<uint8_t> pattern(uint64_t size, uint8_t seed) {
        std::vector<uint8_t> out(size);
        for (uint64_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>((i * 7 + i / 512 + seed) | 1);
        return out;
    }

    [[nodiscard]] const std::string& path() const { return m_path; }
    [[nodiscard]] std::vector<uint8_t> read(uint64_t offset, uint64_t len) const {
        std::vector<uint8_t> out(len);
        UniqueFd fd(::open(m_path.c_str(), O_RDONLY | O_CLOEXEC));
        const ssize_t n = ::pread(fd.get(), out.data(), len, static_cast<off_t>(offset));
        out.resize(n < 0 ? 0 : static_cast<size_t>(n));
        return out;
    }
    [[nodiscard]] std::vector<uint8_t> contents() const { return read(0, size()); }
    [[nodiscard]] uint64_t size() const {
        struct stat st {};
        ::stat(m_path.c_str(), &st);
        return static_cast<uint64_t>(st.st_size);
    }
    [[nodiscard]] uint64_t allocated() const {
        struct stat st {};
        ::stat(m_path.c_str(), &st);
        return static_cast<uint64_t>(st.st_blocks) * 512;
    }
    void truncate(uint64_t size) const { REQUIRE(::truncate(m_path.c_str(), static_cast<off_t>(size)) == 0); }

private:
    std::string m_path;
};

// Whether the file system holding `file` punches holes (ext4, xfs, btrfs and
// tmpfs do; some network and FUSE file systems do not).
inline bool punches_holes(const TempImage& file) {
    UniqueFd fd(::open(file.path().c_str(), O_RDWR | O_CLOEXEC));
    return ::fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1 << 30, 4096) == 0;
}

// struct virtio_blk_outhdr as bytes.
inline std::vector<uint8_t> blk_header(uint32_t type, uint64_t sector) {
    virtio_blk_outhdr h{};
    h.type = type;
    h.sector = sector;
    std::vector<uint8_t> out(sizeof h);
    std::memcpy(out.data(), &h, sizeof h);
    return out;
}

// struct virtio_blk_discard_write_zeroes segments as bytes.
struct Seg {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags = 0;
};
inline std::vector<uint8_t> blk_segments(const std::vector<Seg>& segs) {
    std::vector<uint8_t> out;
    for (const Seg& s : segs) {
        virtio_blk_discard_write_zeroes raw{};
        raw.sector = s.sector;
        raw.num_sectors = s.num_sectors;
        raw.flags = s.flags;
        const auto* p = reinterpret_cast<const uint8_t*>(&raw);
        out.insert(out.end(), p, p + sizeof raw);
    }
    return out;
}

inline std::vector<uint8_t> concat(std::vector<uint8_t> a, const std::vector<uint8_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

inline constexpr uint64_t kRingFeatures = (uint64_t{1} << VIRTIO_F_VERSION_1) |
                                          (uint64_t{1} << VIRTIO_RING_F_EVENT_IDX) |
                                          (uint64_t{1} << VIRTIO_RING_F_INDIRECT_DESC);

// A disk engine the test completes by hand: enqueue() only records the
// operation; release() runs the held ones (real I/O, blocking) and signals
// the completion eventfd, as a kernel finishing them would.
class ManualDiskIo final : public block::DiskIo {
public:
    ManualDiskIo(int fd, uint32_t depth)
        : m_fd(fd), m_depth(depth), m_event(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

    [[nodiscard]] block::DiskIoEngine engine() const override { return block::DiskIoEngine::Sync; }
    [[nodiscard]] int completion_fd() const override { return m_event.get(); }
    void acknowledge_completion_signal() override {
        uint64_t v = 0;
        [[maybe_unused]] const ssize_t n = ::read(m_event.get(), &v, sizeof v);
    }
    [[nodiscard]] uint32_t queue_depth() const override { return m_depth; }
    [[nodiscard]] uint32_t in_flight() const override { return static_cast<uint32_t>(m_held.size() + m_ready.size()); }
    void enqueue(block::DiskIoOp& op) override {
        if (in_flight() >= m_depth) throw std::logic_error("ManualDiskIo: enqueue beyond the queue depth");
        block::detail::start_op(op, m_support);
        m_held.push_back(&op);
        ++m_enqueued;
    }
    void submit() override {}
    uint32_t reap(block::DiskIoClient& client) override {
        uint32_t count = 0;
        while (!m_ready.empty()) {
            const auto [op, result] = m_ready.front();
            m_ready.pop_front();
            client.disk_io_complete(*op, result);
            ++count;
        }
        return count;
    }
    void wait_idle(block::DiskIoClient& client) override {
        ++m_wait_idle_calls;
        while (in_flight() > 0) {
            release();
            reap(client);
        }
    }

    void set_fd(int fd) override {
        if (in_flight() > 0) throw std::logic_error("ManualDiskIo: set_fd with operations in flight");
        m_fd = fd;
        m_support = {};
        ++m_fd_changes;
    }
    [[nodiscard]] int fd_changes() const { return m_fd_changes; }

    // Runs every held operation now; the device sees them at its next reap().
    void release() {
        for (block::DiskIoOp* op : m_held) {
            int64_t result = 0;
            do {
                result = block::detail::run_step_blocking(m_fd, *op);
            } while (block::detail::advance_op(*op, result, m_support) == block::detail::StepOutcome::Resubmit);
            m_ready.emplace_back(op, result);
        }
        m_held.clear();
        const uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = ::write(m_event.get(), &one, sizeof one);
    }
    [[nodiscard]] size_t held() const { return m_held.size(); }
    [[nodiscard]] int enqueued() const { return m_enqueued; }
    [[nodiscard]] int wait_idle_calls() const { return m_wait_idle_calls; }

private:
    int m_fd;
    uint32_t m_depth;
    UniqueFd m_event;
    block::detail::FallocateSupport m_support;
    std::vector<block::DiskIoOp*> m_held;
    std::deque<std::pair<block::DiskIoOp*, int64_t>> m_ready;
    int m_enqueued = 0;
    int m_wait_idle_calls = 0;
    int m_fd_changes = 0;
};

// A VirtioBlock on fake rings: queue i lives in its own RAM region (4 MiB by default)
// (FakeDriverQueue's data area runs to the end of its region).
class BlockRig {
public:
    static constexpr uint64_t kRegionSize = 4 << 20;

    BlockRig(std::unique_ptr<block::VirtioBlock> device, uint16_t queue_size = 64, uint64_t features = kRingFeatures,
             uint64_t region_size = kRegionSize)
        : m_device(std::move(device)),
          m_memory(make_memory(m_device->num_queues(), region_size)),
          m_features(features) {
        const uint16_t count = m_device->num_queues();
        m_queues.reserve(count);
        for (uint16_t i = 0; i < count; ++i) {
            m_drivers.push_back(std::make_unique<FakeDriverQueue>(m_memory, queue_size, Gpa{i * region_size}));
            m_queues.emplace_back(block::VirtioBlock::kQueueSize);
            m_kicks.emplace_back(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
            m_kick_numbers.push_back(m_kicks.back().get());
        }
    }
    ~BlockRig() { m_device.reset(); }

    // Configures and activates `active` queues (all by default), then the device.
    bool activate(uint16_t active = UINT16_MAX) {
        for (size_t i = 0; i < m_queues.size(); ++i) {
            m_queues[i].reset();
            if (i >= active) continue;
            m_drivers[i]->configure(m_queues[i]);
            REQUIRE(m_queues[i].activate(m_memory, m_features) == virtio::QueueError::None);
        }
        const virtio::ActivationContext context{m_memory, m_queues, m_kick_numbers, m_features, notifier, events};
        return m_device->activate(context);
    }

    [[nodiscard]] block::VirtioBlock& device() { return *m_device; }
    [[nodiscard]] FakeDriverQueue& driver(uint16_t q = 0) { return *m_drivers.at(q); }
    [[nodiscard]] virtio::Queue& queue(uint16_t q = 0) { return m_queues.at(q); }
    [[nodiscard]] const GuestMemory& memory() const { return m_memory; }
    [[nodiscard]] int kick_fd(uint16_t q = 0) const { return m_kick_numbers.at(q); }

    void kick(uint16_t q = 0) {
        const uint64_t one = 1;
        REQUIRE(::write(m_kick_numbers.at(q), &one, sizeof one) == sizeof one);
    }

    // Publishes one request (readable buffers, then writable lengths) and kicks.
    uint16_t submit(const std::vector<std::vector<uint8_t>>& readable, const std::vector<uint32_t>& writable,
                    uint16_t q = 0) {
        const uint16_t head = driver(q).submit(readable, writable);
        kick(q);
        return head;
    }

    // Runs the fake event loop until `count` used entries arrived on queue q
    // (I/O may complete on kernel threads) or 10 s passed.
    std::vector<UsedEntry> wait_used(size_t count, uint16_t q = 0) {
        std::vector<UsedEntry> all;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            events.run_ready();
            for (const auto& e : driver(q).used_entries()) all.push_back(e);
            if (all.size() >= count) break;
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        return all;
    }
    UsedEntry wait_one(uint16_t q = 0) {
        const auto used = wait_used(1, q);
        REQUIRE(used.size() == 1);
        return used[0];
    }

    // The status byte of a request: the last writable byte of its chain
    // (virtio 1.2 §5.2.6), whatever the used length says.
    [[nodiscard]] uint8_t status(uint16_t head, uint16_t q = 0) const {
        const auto bytes = m_drivers.at(q)->written(head);
        REQUIRE_FALSE(bytes.empty());
        return bytes.back();
    }

    // One whole request: returns {status, data read} (data empty for writes).
    struct Reply {
        uint8_t status = 0xff;
        std::vector<uint8_t> data;
        uint32_t used_len = 0;
    };
    Reply request(const std::vector<std::vector<uint8_t>>& readable, uint32_t data_in, uint16_t q = 0) {
        std::vector<uint32_t> writable;
        if (data_in > 0) writable.push_back(data_in);
        writable.push_back(1);
        const uint16_t head = submit(readable, writable, q);
        const UsedEntry used = wait_one(q);
        REQUIRE(used.id == head);
        Reply reply;
        reply.used_len = used.len;
        const auto bytes = m_drivers.at(q)->written(head);
        reply.status = bytes.back();
        reply.data.assign(bytes.begin(), bytes.end() - 1);
        return reply;
    }
    Reply read(uint64_t sector, uint32_t len, uint16_t q = 0) {
        return request({blk_header(VIRTIO_BLK_T_IN, sector)}, len, q);
    }
    Reply write(uint64_t sector, const std::vector<uint8_t>& data, uint16_t q = 0) {
        return request({blk_header(VIRTIO_BLK_T_OUT, sector), data}, 0, q);
    }

    [[nodiscard]] uint64_t counter(const std::string& name) const {
        for (const auto& [key, value] : m_device->counters()) {
            if (key == name) return value;
        }
        FAIL("no counter " << name);
        return 0;
    }

    FakeEventRegistry events;
    FakeNotifier notifier;

private:
    static GuestMemory make_memory(uint16_t queues, uint64_t region_size) {
        std::vector<MemoryRegionSpec> regions;
        for (uint16_t i = 0; i < queues; ++i) regions.push_back({Gpa{i * region_size}, region_size});
        return GuestMemory::create(regions);
    }

    std::unique_ptr<block::VirtioBlock> m_device;
    GuestMemory m_memory;
    uint64_t m_features;
    std::vector<std::unique_ptr<FakeDriverQueue>> m_drivers;
    std::vector<virtio::Queue> m_queues;
    std::vector<UniqueFd> m_kicks;
    std::vector<int> m_kick_numbers;
};

inline std::unique_ptr<block::VirtioBlock> make_block(const TempImage& image, block::DiskIoEngine io,
                                                      block::DiskAccess access = block::DiskAccess::ReadWrite,
                                                      uint32_t queues = 1, const std::string& serial = "") {
    block::BlockDeviceConfig config;
    config.name = "blk-test";
    config.serial = serial;
    config.num_queues = queues;
    config.io = io;
    return std::make_unique<block::VirtioBlock>(block::DiskImage::open(image.path(), access), config);
}

}  // namespace keel::test
