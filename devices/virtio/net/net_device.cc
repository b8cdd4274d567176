// VirtioNet: construction, features, configuration space, activation, reset,
// backend subscriptions and counters. The queues are served in net_rx.cc,
// net_tx.cc and net_ctrl.cc.

#include "virtio/net/net_device.h"

#include <linux/virtio_ids.h>
#include <spdlog/spdlog.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

#include "common/error.h"
#include "virtio/net/net_features.h"

namespace keel::virtio {
namespace {

static_assert(std::endian::native == std::endian::little, "virtio 1.x config space is little-endian");
static_assert(VirtioNet::kHeaderSize == 12, "virtio 1.x always uses the 12-byte header (§5.1.6)");

constexpr uint16_t kMinMtu = 68;  // §5.1.4.1: the device MUST NOT offer less

std::string format_mac(const std::array<uint8_t, 6>& mac) {
    std::string out;
    for (const uint8_t byte : mac) {
        static constexpr char kHex[] = "0123456789abcdef";
        if (!out.empty()) out += ':';
        out += kHex[byte >> 4];
        out += kHex[byte & 0xf];
    }
    return out;
}

size_t checked_pairs(const std::string& name, const NetBackend* backend) {
    if (backend == nullptr) throw Error("virtio-net " + name + ": no backend");
    const size_t pairs = backend->queue_pairs();
    if (pairs == 0 || pairs > VirtioNet::kMaxQueuePairs) {
        throw Error("virtio-net " + name + ": the backend has " + std::to_string(pairs) +
                    " queue pairs; keel supports 1 to " + std::to_string(VirtioNet::kMaxQueuePairs));
    }
    return pairs;
}

constexpr uint64_t kIndexBits = 16;
constexpr uint64_t kIndexMask = (uint64_t{1} << kIndexBits) - 1;

}  // namespace

VirtioNet::VirtioNet(NetDeviceConfig config, std::unique_ptr<NetBackend> backend)
    : m_name(std::move(config.name)),
      m_backend(std::move(backend)),
      m_mtu(config.mtu),
      m_features(
          net_device_features(m_backend ? m_backend->supported_offloads() : 0, checked_pairs(m_name, m_backend.get()))),
      m_config_mac(config.mac),
      m_mac(config.mac),
      m_tx_bounce(std::make_unique<uint8_t[]>(kHeaderSize + kMaxTxFrame)) {
    const bool all_zero = std::all_of(m_mac.begin(), m_mac.end(), [](uint8_t b) { return b == 0; });
    if (all_zero || (m_mac[0] & 1) != 0) {
        throw Error("virtio-net " + m_name + ": MAC " + format_mac(m_mac) +
                    " is not a unicast address (the first byte must be even, the address not all zeros)");
    }
    if (m_mtu < kMinMtu) {
        throw Error("virtio-net " + m_name + ": MTU " + std::to_string(m_mtu) + " is below the minimum of " +
                    std::to_string(kMinMtu));
    }
    const size_t pairs = m_backend->queue_pairs();
    m_pairs.resize(pairs);
    for (size_t i = 0; i < pairs; ++i) {
        Pair& pair = m_pairs[i];
        pair.backend_fd = m_backend->queue_fd(i);
        pair.rx.held.resize(kQueueSize);
        pair.rx.frame = std::make_unique<uint8_t[]>(kRxBufferSize);
        pair.tx.timer = UniqueFd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
        if (!pair.tx.timer.valid()) throw_errno("virtio-net " + m_name + ": timerfd_create");
    }
    m_subscribed.reserve(3 * pairs + 1);
    m_watch_changes.reserve(pairs);
    // Until the driver enables more pairs only the first receives.
    (void)attach_backend_queues(1);
    spdlog::debug("virtio-net {}: MAC {}, MTU {}, {} queue pair(s), features {:#x}", m_name, format_mac(m_mac), m_mtu,
                  pairs, m_features);
}

VirtioNet::~VirtioNet() {
    reset();
}

uint32_t VirtioNet::device_type() const {
    return VIRTIO_ID_NET;
}

std::vector<uint16_t> VirtioNet::queue_max_sizes() const {
    return std::vector<uint16_t>(2 * m_pairs.size() + 1, kQueueSize);
}

void VirtioNet::read_config(uint64_t offset, std::span<uint8_t> data) const {
    virtio_net_config config{};
    {
        const std::lock_guard lock(m_mutex);
        std::memcpy(config.mac, m_mac.data(), m_mac.size());
    }
    config.status = VIRTIO_NET_S_LINK_UP;
    config.max_virtqueue_pairs = static_cast<uint16_t>(m_pairs.size());
    config.mtu = m_mtu;
    std::fill(data.begin(), data.end(), uint8_t{0});
    if (offset >= sizeof config) return;
    const size_t count = std::min<uint64_t>(data.size(), sizeof config - offset);
    std::memcpy(data.data(), reinterpret_cast<const uint8_t*>(&config) + offset, count);
}

void VirtioNet::write_config(uint64_t /*offset*/, std::span<const uint8_t> /*data*/) {
    // §5.1.4: in virtio 1.x every field is read-only to the driver; the MAC
    // changes through VIRTIO_NET_CTRL_MAC_ADDR_SET.
}

EventRegistry::Handler VirtioNet::make_handler(HandlerKind kind, uint64_t generation, size_t index) {
    const uint64_t token = (generation << kIndexBits) | index;
    switch (kind) {
        case HandlerKind::Kick:
            return [this, token] { on_kick(token); };
        case HandlerKind::Backend:
            return [this, token] { on_backend_readable(token); };
        case HandlerKind::Timer:
            break;
    }
    return [this, token] { on_tx_timer(token); };
}

bool VirtioNet::activate(const ActivationContext& context) {
    const size_t pairs = m_pairs.size();
    if (context.queues.size() != 2 * pairs + 1 || context.kick_fds.size() != context.queues.size()) return false;
    const std::lock_guard watch(m_watch_mutex);
    EventHandlers handlers;
    uint64_t generation = 0;
    {
        const std::lock_guard lock(m_mutex);
        if (m_active) return false;
        generation = ++m_generation;
        m_acked = context.acked_features;
        m_notifier = &context.notifier;
        m_events = &context.events;
        m_broken = false;
        m_watch_dirty = false;
        // §5.1.2: without MQ the driver uses one pair and the control queue is
        // queue 2; §5.1.6.5.5: only the first pair receives until VQ_PAIRS_SET.
        m_usable_pairs = has(VIRTIO_NET_F_MQ) ? pairs : 1;
        m_active_pairs = 1;
        m_rx_filter.set_vlan_filtering(has(VIRTIO_NET_F_CTRL_VLAN));
        for (size_t i = 0; i < m_usable_pairs; ++i) {
            Pair& pair = m_pairs[i];
            Queue& rx_queue = context.queues[2 * i];
            Queue& tx_queue = context.queues[2 * i + 1];
            // A driver may leave queues disabled (§2.7); those never have work.
            if (rx_queue.active()) {
                pair.rx.queue = &rx_queue;
                pair.rx.kick_fd = context.kick_fds[2 * i];
                handlers.emplace_back(pair.rx.kick_fd, make_handler(HandlerKind::Kick, generation, 2 * i));
            }
            if (tx_queue.active()) {
                pair.tx.queue = &tx_queue;
                pair.tx.kick_fd = context.kick_fds[2 * i + 1];
                handlers.emplace_back(pair.tx.kick_fd, make_handler(HandlerKind::Kick, generation, 2 * i + 1));
                handlers.emplace_back(pair.tx.timer.get(), make_handler(HandlerKind::Timer, generation, i));
            }
            mark_watch(pair.rx, i < m_active_pairs && pair.rx.queue != nullptr);
        }
        m_ctrl_index = SIZE_MAX;
        if (has(VIRTIO_NET_F_CTRL_VQ)) {
            const size_t index = has(VIRTIO_NET_F_MQ) ? 2 * pairs : 2;
            if (context.queues[index].active()) {
                m_ctrl_index = index;
                m_ctrl.queue = &context.queues[index];
                m_ctrl.kick_fd = context.kick_fds[index];
                handlers.emplace_back(m_ctrl.kick_fd, make_handler(HandlerKind::Kick, generation, index));
            }
        }
        // Before any frame is read: the backend hands out only what the
        // driver accepts. A backend that refuses keeps sending plain frames,
        // which every driver takes, so this is no reason to fail.
        const unsigned offloads = tun_offloads_for(m_acked);
        m_guest_offloads = 0;
        if (m_backend->set_offloads(offloads)) {
            m_guest_offloads = offloads;
        } else {
            note_backend_error("setting the receive offloads", 0);
        }
        m_active = true;
    }
    // Outside m_mutex (see the class comment). Kicks that arrived before
    // DRIVER_OK are still pending on their level-triggered fds and run now.
    std::vector<int> added;
    try {
        added = add_all_or_none(context.events, handlers);
    } catch (const Error& e) {
        spdlog::warn("virtio-net {}: cannot watch its queues: {}", m_name, e.what());
        const std::lock_guard lock(m_mutex);
        if (m_guest_offloads != 0) (void)m_backend->set_offloads(0);
        clear_activation_locked();
        return false;
    }
    {
        const std::lock_guard lock(m_mutex);
        m_subscribed = std::move(added);
    }
    sync_watches_with_watch_lock();
    return true;
}

void VirtioNet::reset() {
    const std::lock_guard watch(m_watch_mutex);
    std::vector<int> fds;
    EventRegistry* events = nullptr;
    bool had_offloads = false;
    {
        const std::lock_guard lock(m_mutex);
        fds = std::move(m_subscribed);
        m_subscribed.clear();
        for (const Pair& pair : m_pairs) {
            if (pair.rx.watched) fds.push_back(pair.backend_fd);
        }
        events = m_events;
        had_offloads = m_guest_offloads != 0;
        clear_activation_locked();
    }
    if (events != nullptr) {
        for (const int fd : fds) events->remove(fd);
    }
    if (had_offloads && !m_backend->set_offloads(0)) {
        const std::lock_guard lock(m_mutex);
        note_backend_error("clearing the receive offloads", 0);
    }
}

// Forgets the activation. The caller removes the subscriptions.
void VirtioNet::clear_activation_locked() {
    // A handler still running (or run once more) after this sees a stale
    // generation and does nothing.
    m_active = false;
    ++m_generation;
    m_broken = false;
    m_watch_dirty = false;
    m_subscribed.clear();
    for (Pair& pair : m_pairs) {
        RxState& rx = pair.rx;
        // A frame the backend delivered that no driver will get now.
        if (rx.frame_len != 0) m_rx_dropped.fetch_add(1, std::memory_order_relaxed);
        rx.queue = nullptr;
        rx.kick_fd = -1;
        rx.held_count = 0;
        rx.held_bytes = 0;
        rx.frame_len = 0;
        rx.want_watch = rx.watched = rx.used_added = false;
        TxState& tx = pair.tx;
        disarm_tx_timer(tx);
        tx.queue = nullptr;
        tx.kick_fd = -1;
        tx.pending = false;
        tx.retries = 0;
        tx.used_added = false;
    }
    m_ctrl.queue = nullptr;
    m_ctrl.kick_fd = -1;
    m_ctrl.used_added = false;
    m_ctrl_index = SIZE_MAX;
    m_notifier = nullptr;
    m_events = nullptr;
    m_guest_offloads = 0;
    m_acked = 0;
    // §2.1: reset returns the device to its initial state.
    m_mac = m_config_mac;
    m_rx_filter = NetRxFilter{};
    m_usable_pairs = 1;
    m_active_pairs = 1;
    (void)attach_backend_queues(1);
}

// ---- Handlers ----

void VirtioNet::on_kick(uint64_t token) {
    const size_t index = token & kIndexMask;
    bool resync = false;
    {
        const std::lock_guard lock(m_mutex);
        // A stale handler leaves the fd alone: it may belong to a newer
        // activation. A broken device still drains it, or the loop would spin.
        if (!m_active || (token >> kIndexBits) != m_generation) return;
        int fd = -1;
        if (index == m_ctrl_index) {
            fd = m_ctrl.kick_fd;
        } else if (index < 2 * m_usable_pairs) {
            fd = index % 2 == 0 ? m_pairs[index / 2].rx.kick_fd : m_pairs[index / 2].tx.kick_fd;
        }
        if (fd < 0) return;
        // Level-triggered: consume the kick before draining, so one that
        // arrives meanwhile makes the fd readable again.
        uint64_t count = 0;
        [[maybe_unused]] const ssize_t n = ::read(fd, &count, sizeof count);
        if (m_broken) return;
        if (index == m_ctrl_index) {
            process_ctrl();
        } else if (index % 2 == 0) {
            process_rx(index / 2);
        } else {
            process_tx(index / 2, false);
        }
        resync = finish_locked();
    }
    if (resync) sync_watches();
}

void VirtioNet::on_backend_readable(uint64_t token) {
    const size_t index = token & kIndexMask;
    bool resync = false;
    {
        const std::lock_guard lock(m_mutex);
        if (!m_active || m_broken || (token >> kIndexBits) != m_generation || index >= m_usable_pairs) return;
        process_rx(index);
        resync = finish_locked();
    }
    if (resync) sync_watches();
}

void VirtioNet::on_tx_timer(uint64_t token) {
    const size_t index = token & kIndexMask;
    if (index >= m_pairs.size()) return;
    // The timerfd belongs to the device and lives as long as it does.
    uint64_t expirations = 0;
    [[maybe_unused]] const ssize_t n = ::read(m_pairs[index].tx.timer.get(), &expirations, sizeof expirations);
    bool resync = false;
    {
        const std::lock_guard lock(m_mutex);
        if (!m_active || m_broken || (token >> kIndexBits) != m_generation || index >= m_usable_pairs) return;
        m_pairs[index].tx.timer_armed = false;
        process_tx(index, true);
        resync = finish_locked();
    }
    if (resync) sync_watches();
}

bool VirtioNet::finish_locked() {
    if (!m_broken) {
        const auto signal = [this](Queue* queue, bool& used_added, size_t index) {
            if (queue == nullptr || !used_added) return;
            used_added = false;
            // §2.7.10: VRING_AVAIL_F_NO_INTERRUPT or used_event decide.
            if (!queue->needs_notification()) return;
            m_notifications.fetch_add(1, std::memory_order_relaxed);
            m_notifier->signal_used_queue(static_cast<uint16_t>(index));
        };
        for (size_t i = 0; i < m_usable_pairs; ++i) {
            signal(m_pairs[i].rx.queue, m_pairs[i].rx.used_added, 2 * i);
            signal(m_pairs[i].tx.queue, m_pairs[i].tx.used_added, 2 * i + 1);
        }
        signal(m_ctrl.queue, m_ctrl.used_added, m_ctrl_index);
    }
    return m_watch_dirty;
}

// ---- Backend subscriptions ----

void VirtioNet::mark_watch(RxState& rx, bool want) {
    rx.want_watch = want;
    if (want != rx.watched) m_watch_dirty = true;
}

void VirtioNet::sync_watches() {
    const std::lock_guard watch(m_watch_mutex);
    sync_watches_with_watch_lock();
}

// Called with m_watch_mutex held, m_mutex not: decides under m_mutex, then
// calls the registry without it. Nobody else changes subscriptions meanwhile
// (they all hold m_watch_mutex), so `watched` always matches the registry.
void VirtioNet::sync_watches_with_watch_lock() {
    EventRegistry* events = nullptr;
    uint64_t generation = 0;
    m_watch_changes.clear();  // capacity reserved at construction: no allocation
    {
        const std::lock_guard lock(m_mutex);
        m_watch_dirty = false;
        if (!m_active || m_events == nullptr) return;
        for (size_t i = 0; i < m_pairs.size(); ++i) {
            RxState& rx = m_pairs[i].rx;
            // A broken device must not keep a readable backend fd subscribed:
            // its handler would return at once and the loop would spin.
            const bool want = rx.want_watch && !m_broken;
            if (want == rx.watched) continue;
            rx.watched = want;
            m_watch_changes.push_back(WatchChange{i, want});
        }
        events = m_events;
        generation = m_generation;
    }
    for (const WatchChange& change : m_watch_changes) {
        const int fd = m_pairs[change.pair].backend_fd;
        if (!change.add) {
            events->remove(fd);
            continue;
        }
        try {
            events->add(fd, make_handler(HandlerKind::Backend, generation, change.pair));
        } catch (const Error& e) {
            spdlog::warn("virtio-net {}: cannot watch backend queue {}: {}", m_name, change.pair, e.what());
            const std::lock_guard lock(m_mutex);
            m_pairs[change.pair].rx.watched = false;
            if (m_active && generation == m_generation) fail_device("the backend cannot be watched");
        }
    }
}

// ---- Shared helpers ----

bool VirtioNet::add_used(Queue& queue, uint16_t head, uint32_t len, bool& used_added) {
    if (!queue.add_used(head, len)) {
        fail_device(describe(queue.last_error()));
        return false;
    }
    used_added = true;
    return true;
}

void VirtioNet::self_kick(int fd) {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(fd, &one, sizeof one);
}

void VirtioNet::fail_device(const char* reason) {
    if (m_broken) return;
    m_broken = true;
    m_errors.fetch_add(1, std::memory_order_relaxed);
    if (!m_logged_failure) {
        m_logged_failure = true;
        spdlog::warn("virtio-net {}: driver error ({}); the device stops until it is reset", m_name, reason);
    }
    // Stop watching the backend (sync_watches drops every backend fd).
    for (Pair& pair : m_pairs) {
        if (pair.rx.watched) m_watch_dirty = true;
    }
    // Notifiers never take a lock (transport_core.h), so this is safe under m_mutex.
    if (m_notifier != nullptr) m_notifier->set_needs_reset();
}

void VirtioNet::note_driver_error(const char* what) {
    m_errors.fetch_add(1, std::memory_order_relaxed);
    if (m_logged_driver_error) return;
    m_logged_driver_error = true;
    spdlog::warn("virtio-net {}: bad request from the driver ({}); refused, the device goes on (logged once)", m_name,
                 what);
}

void VirtioNet::note_backend_error(const char* what, int error) {
    if (m_logged_backend_error) return;
    m_logged_backend_error = true;
    spdlog::warn("virtio-net {}: backend error {}{}{} (logged once)", m_name, what, error != 0 ? ": " : "",
                 error != 0 ? std::strerror(error) : "");
}

// ---- Observers ----

std::vector<DeviceCounter> VirtioNet::counters() const {
    const auto get = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
    return {
        {"rx_packets", get(m_rx_packets)},
        {"rx_bytes", get(m_rx_bytes)},
        {"rx_dropped", get(m_rx_dropped)},
        {"rx_filtered", get(m_rx_filtered)},
        {"tx_packets", get(m_tx_packets)},
        {"tx_bytes", get(m_tx_bytes)},
        {"tx_dropped", get(m_tx_dropped)},
        {"errors", get(m_errors)},
        {"ctrl_commands", get(m_ctrl_commands)},
        {"used_notifications", get(m_notifications)},
    };
}

std::array<uint8_t, 6> VirtioNet::mac() const {
    const std::lock_guard lock(m_mutex);
    return m_mac;
}

NetRxFilter VirtioNet::rx_filter() const {
    const std::lock_guard lock(m_mutex);
    return m_rx_filter;
}

size_t VirtioNet::active_queue_pairs() const {
    const std::lock_guard lock(m_mutex);
    return m_active_pairs;
}

unsigned VirtioNet::guest_offloads() const {
    const std::lock_guard lock(m_mutex);
    return m_guest_offloads;
}

}  // namespace keel::virtio
