// VirtioBlock: construction, feature bits, configuration space, activation,
// reset and counters. The request path is in block_device_io.cc.

#include "virtio/block/block_device.h"

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
// The legacy vring_init() helper in this header is C, not C++.
#define VIRTIO_RING_NO_LEGACY
#include <linux/virtio_ring.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <optional>
#include <utility>

#include "common/error.h"

namespace keel::block {
namespace {

static_assert(std::endian::native == std::endian::little, "virtio 1.x config space is little-endian");

constexpr uint64_t bit(unsigned feature) {
    return 1ull << feature;
}

// TOPOLOGY is worth offering when the guest can do better than 512-byte
// I/O: a larger physical block (file system block or 4Kn/512e disk), or a
// minimum/optimal I/O size (virtio 1.2 §5.2.5).
bool has_topology(const DiskGeometry& g) {
    return g.physical_block_size > g.logical_block_size || g.min_io_size > g.logical_block_size || g.opt_io_size > 0;
}

uint64_t block_features(const DiskImage& image, uint16_t num_queues) {
    uint64_t features = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_EVENT_IDX) | bit(VIRTIO_RING_F_INDIRECT_DESC) |
                        bit(VIRTIO_BLK_F_FLUSH) | bit(VIRTIO_BLK_F_SEG_MAX) | bit(VIRTIO_BLK_F_SIZE_MAX) |
                        bit(VIRTIO_BLK_F_BLK_SIZE);
    if (has_topology(image.geometry())) features |= bit(VIRTIO_BLK_F_TOPOLOGY);
    if (num_queues > 1) features |= bit(VIRTIO_BLK_F_MQ);
    if (image.read_only()) {
        features |= bit(VIRTIO_BLK_F_RO);
    } else {
        // Write-zeroes always works (it falls back to writing zeros);
        // discard only where the file system can punch holes.
        features |= bit(VIRTIO_BLK_F_WRITE_ZEROES);
        if (image.can_punch_holes()) features |= bit(VIRTIO_BLK_F_DISCARD);
    }
    return features;
}

virtio_blk_config block_config(const DiskImage& image, uint16_t num_queues) {
    const DiskGeometry& g = image.geometry();
    virtio_blk_config config{};
    config.capacity = image.capacity_sectors();
    config.size_max = VirtioBlock::kSizeMax;
    config.seg_max = VirtioBlock::kSegMax;
    config.blk_size = g.logical_block_size;
    if (has_topology(g)) {
        config.physical_block_exp =
            static_cast<uint8_t>(std::countr_zero(std::max(g.physical_block_size / g.logical_block_size, 1u)));
        config.alignment_offset = 0;
        config.min_io_size = static_cast<uint16_t>(std::min<uint32_t>(g.min_io_size / g.logical_block_size, 0xffff));
        config.opt_io_size = g.opt_io_size / g.logical_block_size;
    }
    config.num_queues = num_queues;
    config.max_discard_sectors = VirtioBlock::kMaxDiscardSectors;
    config.max_discard_seg = VirtioBlock::kMaxSegments;
    // Discards smaller than a file system block free nothing.
    config.discard_sector_alignment = std::max(g.physical_block_size, g.logical_block_size) / 512;
    config.max_write_zeroes_sectors = VirtioBlock::kMaxDiscardSectors;
    config.max_write_zeroes_seg = VirtioBlock::kMaxSegments;
    // §5.2.6.2: set iff a write-zeroes request may deallocate sectors.
    config.write_zeroes_may_unmap = image.can_punch_holes() ? 1 : 0;
    return config;
}

}  // namespace

namespace {

BlockDeviceConfig config_from(const DiskOptions& options, uint32_t num_queues) {
    BlockDeviceConfig config;
    if (!options.id.empty()) config.name = options.id;
    config.serial = options.serial;
    config.num_queues = num_queues;
    config.io = options.io;
    return config;
}

}  // namespace

VirtioBlock::VirtioBlock(const DiskOptions& options, uint32_t num_queues)
    : VirtioBlock(DiskImage::open(options.path, options.access), config_from(options, num_queues)) {}

VirtioBlock::VirtioBlock(DiskImage image, BlockDeviceConfig config) : VirtioBlock(std::move(image), config, nullptr) {}

VirtioBlock::VirtioBlock(DiskImage image, BlockDeviceConfig config, std::unique_ptr<DiskIo> io)
    : m_image(std::move(image)),
      m_name(std::move(config.name)),
      m_num_queues(static_cast<uint16_t>(std::clamp<uint32_t>(config.num_queues, 1, kMaxBlockQueues))),
      m_features(block_features(m_image, m_num_queues)),
      m_config(block_config(m_image, m_num_queues)),
      m_io(io ? std::move(io) : make_disk_io(config.io, m_image.fd(), kMaxInFlight)) {
    // GET_ID (§5.2.6): NUL-padded, no terminator when all 20 bytes are used.
    std::memcpy(m_id.data(), config.serial.data(), std::min(config.serial.size(), m_id.size()));
    m_limits.capacity_sectors = m_image.capacity_sectors();
    m_limits.read_only = m_image.read_only();
    m_limits.discard = (m_features & bit(VIRTIO_BLK_F_DISCARD)) != 0;
    m_limits.write_zeroes = (m_features & bit(VIRTIO_BLK_F_WRITE_ZEROES)) != 0;
    m_limits.max_discard_sectors = kMaxDiscardSectors;
    m_limits.max_discard_segments = kMaxSegments;
    m_limits.max_write_zeroes_sectors = kMaxDiscardSectors;
    m_limits.max_write_zeroes_segments = kMaxSegments;
    m_queues.reserve(m_num_queues);
    m_slots.reserve(kMaxInFlight);
    m_free.reserve(kMaxInFlight);
    spdlog::debug("virtio-blk {}: '{}', {} sectors, {}, {} queue(s), {} I/O", m_name, m_image.path(),
                  m_image.capacity_sectors(), m_image.read_only() ? "read-only" : "read-write", m_num_queues,
                  to_string(m_io->engine()));
}

VirtioBlock::~VirtioBlock() {
    reset();
}

uint32_t VirtioBlock::device_type() const {
    return VIRTIO_ID_BLOCK;
}

std::vector<uint16_t> VirtioBlock::queue_max_sizes() const {
    return std::vector<uint16_t>(m_num_queues, kQueueSize);
}

void VirtioBlock::read_config(uint64_t offset, std::span<uint8_t> data) const {
    std::fill(data.begin(), data.end(), uint8_t{0});
    if (offset >= sizeof m_config) return;
    const size_t count = std::min<uint64_t>(data.size(), sizeof m_config - offset);
    const std::lock_guard lock(m_config_mutex);
    std::memcpy(data.data(), reinterpret_cast<const uint8_t*>(&m_config) + offset, count);
}

void VirtioBlock::change_backing_file(const std::string& path) {
    // Opened before anything changes, so a bad path leaves the disk as it was.
    std::optional<DiskImage> replacement;
    if (!m_image.is_same_file(path)) replacement = DiskImage::open(path, m_image.access());
    const std::lock_guard lock(m_mutex);
    m_io->wait_idle(*this);
    if (replacement) {
        m_io->set_fd(replacement->fd());
        m_image = std::move(*replacement);
    } else {
        m_image.refresh();
    }
    m_limits.capacity_sectors = m_image.capacity_sectors();
    {
        const std::lock_guard config_lock(m_config_mutex);
        m_config = block_config(m_image, m_num_queues);
    }
    spdlog::info("virtio-blk {}: now '{}', {} sectors", m_name, m_image.path(), m_image.capacity_sectors());
    if (!m_active || m_broken) return;
    // The answers wait_idle() completed go out, throttled queues go on.
    finish_work();
    if (m_notifier != nullptr) m_notifier->signal_config_change();
}

void VirtioBlock::write_config(uint64_t /*offset*/, std::span<const uint8_t> /*data*/) {
    // Only `writeback` is ever driver-writable, and only with CONFIG_WCE,
    // which keel does not offer.
}

bool VirtioBlock::activate(const virtio::ActivationContext& context) {
    if (context.queues.empty() || context.queues.size() > m_num_queues ||
        context.kick_fds.size() != context.queues.size()) {
        return false;
    }
    EventHandlers handlers;
    {
        const std::lock_guard lock(m_mutex);
        if (m_active) return false;
        const uint64_t generation = ++m_generation;
        m_notifier = &context.notifier;
        m_events = &context.events;
        m_broken = false;
        m_queues.assign(context.queues.size(), QueueState{});
        for (size_t i = 0; i < context.queues.size(); ++i) {
            // A driver may leave queues disabled (without MQ it uses only
            // the first); those simply never have work.
            if (!context.queues[i].active()) continue;
            const int fd = context.kick_fds[i];
            const auto index = static_cast<uint16_t>(i);
            m_queues[i] = QueueState{&context.queues[i], fd};
            handlers.emplace_back(fd, [this, fd, index, generation] {
                // Level-triggered: consume the kick before draining, so one
                // that arrives meanwhile makes the fd readable again.
                uint64_t count = 0;
                const bool kicked = ::read(fd, &count, sizeof count) == sizeof count;
                on_kick(index, generation, kicked ? count : 0);
            });
        }
        if (const int fd = m_io->completion_fd(); fd >= 0) {
            handlers.emplace_back(fd, [this, generation] { on_completion(generation); });
        }
        m_active = true;
    }
    // Outside m_mutex (see the class comment). A kick that arrived before
    // DRIVER_OK is still pending on its level-triggered fd and runs now.
    std::vector<int> added;
    try {
        added = add_all_or_none(context.events, handlers);
    } catch (const Error& e) {
        spdlog::warn("virtio-blk {}: cannot watch its queues: {}", m_name, e.what());
        const std::lock_guard lock(m_mutex);
        m_active = false;
        ++m_generation;
        return false;
    }
    const std::lock_guard lock(m_mutex);
    m_subscribed = std::move(added);
    return true;
}

void VirtioBlock::reset() {
    std::vector<int> fds;
    EventRegistry* events = nullptr;
    {
        const std::lock_guard lock(m_mutex);
        // A handler still running (or run once more) after this sees a stale
        // generation and does nothing; completions of the I/O we wait for
        // below see it too and only free their slots.
        m_active = false;
        ++m_generation;
        m_io->wait_idle(*this);
        m_broken = false;
        m_queues.clear();
        m_notifier = nullptr;
        fds = std::move(m_subscribed);
        m_subscribed.clear();
        events = m_events;
    }
    if (events != nullptr) {
        for (const int fd : fds) events->remove(fd);
    }
}

std::vector<virtio::DeviceCounter> VirtioBlock::counters() const {
    const auto get = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
    return {
        {"requests", get(m_requests)},
        {"read_bytes", get(m_read_bytes)},
        {"written_bytes", get(m_written_bytes)},
        {"flushes", get(m_flushes)},
        {"discards", get(m_discards)},
        {"write_zeroes", get(m_write_zeroes)},
        {"errors", get(m_errors)},
        {"driver_notifications", get(m_notifications)},
        {"used_notifications", get(m_interrupts)},
        {"in_flight_max", get(m_in_flight_max)},
    };
}

}  // namespace keel::block
