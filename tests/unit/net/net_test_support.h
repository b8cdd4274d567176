#pragma once

// Shared set-up for the virtio-net tests: a NetBackend over
// socketpair(AF_UNIX, SOCK_SEQPACKET) whose far ends play the TAP, and a
// VirtioNet on fake rings (NetRig) with one FakeDriverQueue per queue, each
// in its own RAM region.

#include <linux/if_tun.h>
#include <linux/virtio_config.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#define VIRTIO_RING_NO_LEGACY
#include <linux/virtio_ring.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "memory/guest_memory.h"
#include "virtio/net/net_backend.h"
#include "virtio/net/net_device.h"
#include "virtio/net/net_features.h"
#include "virtio/queue/queue.h"
#include "virtio_fakes/fake_driver_queue.h"
#include "virtio_fakes/fake_event_registry.h"
#include "virtio_fakes/fake_notifier.h"

namespace keel::test {

using virtio::net_feature;

inline constexpr uint64_t kRingFeatures =
    net_feature(VIRTIO_F_VERSION_1) | net_feature(VIRTIO_RING_F_EVENT_IDX) | net_feature(VIRTIO_RING_F_INDIRECT_DESC);
inline constexpr unsigned kAllOffloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO;
inline constexpr size_t kHdr = sizeof(virtio_net_hdr_v1);
inline constexpr std::array<uint8_t, 6> kTestMac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

// What the backend saw, shared between the backend (owned by the device) and the test.
struct BackendState {
    std::vector<UniqueFd> device_fds;  // handed to the device
    std::vector<UniqueFd> peer_fds;    // the "TAP" side the test reads and writes
    unsigned supported = kAllOffloads;
    bool fail_set_offloads = false;
    std::vector<unsigned> offload_calls;
    std::vector<bool> attached;  // per pair, as set_queue_attached() left it
    bool fail_attach = false;
};

class SocketpairBackend final : public virtio::NetBackend {
public:
    explicit SocketpairBackend(std::shared_ptr<BackendState> state) : m_state(std::move(state)) {}
    [[nodiscard]] size_t queue_pairs() const override { return m_state->device_fds.size(); }
    [[nodiscard]] int queue_fd(size_t pair) const override { return m_state->device_fds.at(pair).get(); }
    [[nodiscard]] unsigned supported_offloads() const override { return m_state->supported; }
    [[nodiscard]] bool set_offloads(unsigned tun_flags) override {
        m_state->offload_calls.push_back(tun_flags);
        return !m_state->fail_set_offloads;
    }
    [[nodiscard]] bool set_queue_attached(size_t pair, bool attached) override {
        if (pair == 0 || pair >= m_state->attached.size() || (attached && m_state->fail_attach)) return false;
        m_state->attached[pair] = attached;
        return true;
    }

private:
    std::shared_ptr<BackendState> m_state;
};

inline std::shared_ptr<BackendState> make_backend_state(size_t pairs, unsigned supported = kAllOffloads) {
    auto state = std::make_shared<BackendState>();
    state->supported = supported;
    for (size_t i = 0; i < pairs; ++i) {
        int fds[2] = {-1, -1};
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
            throw std::runtime_error("socketpair failed");
        }
        state->device_fds.emplace_back(fds[0]);
        state->peer_fds.emplace_back(fds[1]);
    }
    state->attached.assign(pairs, true);
    return state;
}

inline virtio::NetDeviceConfig test_config(uint16_t mtu = 1500) {
    virtio::NetDeviceConfig config;
    config.name = "net-test";
    config.mac = kTestMac;
    config.mtu = mtu;
    return config;
}

// struct virtio_net_hdr_v1 as bytes.
inline virtio_net_hdr_v1 make_header(uint8_t flags = 0, uint8_t gso_type = VIRTIO_NET_HDR_GSO_NONE,
                                     uint16_t num_buffers = 0) {
    virtio_net_hdr_v1 h{};
    h.flags = flags;
    h.gso_type = gso_type;
    h.num_buffers = num_buffers;
    return h;
}
inline std::vector<uint8_t> header_bytes(const virtio_net_hdr_v1& h) {
    std::vector<uint8_t> out(sizeof h);
    std::memcpy(out.data(), &h, sizeof h);
    return out;
}
inline virtio_net_hdr_v1 parse_header(const std::vector<uint8_t>& bytes) {
    virtio_net_hdr_v1 h{};
    REQUIRE(bytes.size() >= sizeof h);
    std::memcpy(&h, bytes.data(), sizeof h);
    return h;
}
// A frame of `size` bytes whose content depends on `seed`.
inline std::vector<uint8_t> frame_bytes(size_t size, uint8_t seed) {
    std::vector<uint8_t> out(size);
    for (size_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>(i * 31 + i / 256 + seed);
    return out;
}
inline std::vector<uint8_t> concat(std::vector<uint8_t> a, const std::vector<uint8_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}
// header + frame, as one message from the TAP.
inline std::vector<uint8_t> packet(size_t frame_size, uint8_t seed, const virtio_net_hdr_v1& h = make_header()) {
    return concat(header_bytes(h), frame_bytes(frame_size, seed));
}

// A VirtioNet on fake rings. Queue i lives at i * kRegionSize.
class NetRig {
public:
    static constexpr uint64_t kRegionSize = 1 << 20;

    explicit NetRig(size_t pairs = 1, unsigned supported = kAllOffloads, uint16_t queue_size = 256,
                    virtio::NetDeviceConfig config = test_config())
        : backend(make_backend_state(pairs, supported)),
          m_device(
              std::make_unique<virtio::VirtioNet>(std::move(config), std::make_unique<SocketpairBackend>(backend))),
          m_memory(make_memory(2 * pairs + 1)),
          m_queue_size(queue_size) {
        const size_t count = 2 * pairs + 1;
        m_queues.reserve(count);
        for (size_t i = 0; i < count; ++i) {
            m_drivers.push_back(std::make_unique<FakeDriverQueue>(m_memory, queue_size, Gpa{i * kRegionSize}));
            m_queues.emplace_back(virtio::VirtioNet::kQueueSize);
            m_kicks.emplace_back(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
            m_kick_numbers.push_back(m_kicks.back().get());
        }
    }
    ~NetRig() { m_device.reset(); }
    NetRig(const NetRig&) = delete;
    NetRig& operator=(const NetRig&) = delete;

    // Configures and activates the queues for which `enabled(i)` holds (all
    // by default), then the device, with `features` acked.
    bool activate(uint64_t features, const std::function<bool(size_t)>& enabled = nullptr,
                  EventRegistry* registry = nullptr) {
        m_features = features;
        for (size_t i = 0; i < m_queues.size(); ++i) {
            m_queues[i].reset();
            m_drivers[i] = std::make_unique<FakeDriverQueue>(m_memory, m_queue_size, Gpa{i * kRegionSize});
            if (enabled && !enabled(i)) continue;
            m_drivers[i]->configure(m_queues[i]);
            REQUIRE(m_queues[i].activate(m_memory, features) == virtio::QueueError::None);
        }
        const virtio::ActivationContext context{m_memory, m_queues, m_kick_numbers,
                                                features, notifier, registry != nullptr ? *registry : events};
        return m_device->activate(context);
    }
    // Every feature the device offers.
    bool activate_all() { return activate(m_device->device_features()); }
    void reset() {
        m_device->reset();
        for (auto& q : m_queues) q.reset();
    }

    [[nodiscard]] virtio::VirtioNet& device() { return *m_device; }
    [[nodiscard]] FakeDriverQueue& driver(size_t q) { return *m_drivers.at(q); }
    [[nodiscard]] const GuestMemory& memory() const { return m_memory; }
    [[nodiscard]] int kick_fd(size_t q) const { return m_kick_numbers.at(q); }
    [[nodiscard]] int backend_fd(size_t pair = 0) const { return backend->device_fds.at(pair).get(); }
    [[nodiscard]] int peer_fd(size_t pair = 0) const { return backend->peer_fds.at(pair).get(); }
    [[nodiscard]] size_t pairs() const { return backend->device_fds.size(); }
    [[nodiscard]] static uint16_t rxq(size_t pair = 0) { return static_cast<uint16_t>(2 * pair); }
    [[nodiscard]] static uint16_t txq(size_t pair = 0) { return static_cast<uint16_t>(2 * pair + 1); }
    // §5.1.2: the control queue is queue 2 unless MQ was negotiated.
    [[nodiscard]] uint16_t ctrlq() const {
        return static_cast<uint16_t>((m_features & net_feature(VIRTIO_NET_F_MQ)) != 0 ? 2 * pairs() : 2);
    }

    void kick(size_t q) {
        const uint64_t one = 1;
        REQUIRE(::write(m_kick_numbers.at(q), &one, sizeof one) == sizeof one);
    }
    // Runs the fake event loop until nothing is ready.
    void run() { events.run_ready(); }
    // Runs the loop (sleeping a little in between, for timers) until
    // `done()` or 5 s passed.
    bool run_until(const std::function<bool()>& done) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (std::chrono::steady_clock::now() < deadline) {
            events.run_ready();
            if (done()) return true;
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        return false;
    }

    // ---- Guest side ----
    // Receive buffers: one chain per entry of `chains`, each with writable
    // buffers of the given sizes; published and kicked.
    std::vector<uint16_t> post_rx(const std::vector<std::vector<uint32_t>>& chains, size_t pair = 0) {
        std::vector<uint16_t> heads;
        for (const auto& sizes : chains) heads.push_back(driver(rxq(pair)).add_chain({}, sizes));
        driver(rxq(pair)).publish();
        kick(rxq(pair));
        return heads;
    }
    // One transmit chain: `buffers` device-readable, published and kicked.
    uint16_t send_tx(const std::vector<std::vector<uint8_t>>& buffers, size_t pair = 0, bool indirect = false) {
        auto& d = driver(txq(pair));
        const uint16_t head = indirect ? d.add_indirect_chain(buffers, {}) : d.add_chain(buffers, {});
        d.publish();
        kick(txq(pair));
        return head;
    }
    // A control command; returns {used entry, ack byte (0xee when none written)}.
    struct CtrlReply {
        UsedEntry used;
        uint8_t ack = 0xee;
    };
    CtrlReply ctrl(uint8_t cls, uint8_t cmd, const std::vector<uint8_t>& payload, uint32_t ack_len = 1) {
        std::vector<std::vector<uint8_t>> readable{{cls, cmd}};
        if (!payload.empty()) readable.push_back(payload);
        return ctrl_raw(readable, ack_len == 0 ? std::vector<uint32_t>{} : std::vector<uint32_t>{ack_len});
    }
    CtrlReply ctrl_raw(const std::vector<std::vector<uint8_t>>& readable, const std::vector<uint32_t>& writable) {
        auto& d = driver(ctrlq());
        const uint16_t head = d.add_chain(readable, writable);
        d.publish();
        kick(ctrlq());
        run();
        const auto used = d.used_entries();
        REQUIRE(used.size() == 1);
        CtrlReply reply;
        reply.used = used[0];
        REQUIRE(reply.used.id == head);
        if (reply.used.len >= 1) reply.ack = d.written(head, 1).at(0);
        return reply;
    }

    // ---- TAP side ----
    void tap_send(const std::vector<uint8_t>& message, size_t pair = 0) {
        REQUIRE(::send(peer_fd(pair), message.data(), message.size(), MSG_DONTWAIT) ==
                static_cast<ssize_t>(message.size()));
    }
    std::optional<std::vector<uint8_t>> tap_recv(size_t pair = 0) {
        std::vector<uint8_t> buffer(128 * 1024);
        const ssize_t n = ::recv(peer_fd(pair), buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (n < 0) return std::nullopt;
        buffer.resize(static_cast<size_t>(n));
        return buffer;
    }
    [[nodiscard]] bool tap_has_data(size_t pair = 0) const {
        pollfd p{peer_fd(pair), POLLIN, 0};
        return ::poll(&p, 1, 0) == 1;
    }

    [[nodiscard]] uint64_t counter(const std::string& name) const {
        for (const auto& [key, value] : m_device->counters()) {
            if (key == name) return value;
        }
        FAIL("no counter " << name);
        return 0;
    }

    std::shared_ptr<BackendState> backend;
    FakeEventRegistry events;
    FakeNotifier notifier;

private:
    static GuestMemory make_memory(size_t regions) {
        std::vector<MemoryRegionSpec> specs;
        for (size_t i = 0; i < regions; ++i) specs.push_back({Gpa{i * kRegionSize}, kRegionSize});
        return GuestMemory::create(specs);
    }

    std::unique_ptr<virtio::VirtioNet> m_device;
    GuestMemory m_memory;
    uint16_t m_queue_size;
    uint64_t m_features = 0;
    std::vector<std::unique_ptr<FakeDriverQueue>> m_drivers;
    std::vector<virtio::Queue> m_queues;
    std::vector<UniqueFd> m_kicks;
    std::vector<int> m_kick_numbers;
};

// Feature sets the tests negotiate.
inline constexpr uint64_t kBasicNet = kRingFeatures | net_feature(VIRTIO_NET_F_MAC) | net_feature(VIRTIO_NET_F_STATUS) |
                                      net_feature(VIRTIO_NET_F_CTRL_VQ) | net_feature(VIRTIO_NET_F_CTRL_RX) |
                                      net_feature(VIRTIO_NET_F_CTRL_VLAN) | net_feature(VIRTIO_NET_F_CTRL_MAC_ADDR);
inline constexpr uint64_t kMergeable = kBasicNet | net_feature(VIRTIO_NET_F_MRG_RXBUF);

}  // namespace keel::test
