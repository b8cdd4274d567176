// virtio-net activation, reset, multiqueue, counters across threads, and the
// device end to end behind the virtio-mmio transport.

#include <linux/virtio_mmio.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "net_test_support.h"
#include "virtio/mmio_harness.h"

using namespace keel;
using namespace keel::test;
using virtio::VirtioNet;

namespace {

template <typename T>
std::vector<uint8_t> bytes_of(const T& value) {
    std::vector<uint8_t> out(sizeof value);
    std::memcpy(out.data(), &value, sizeof value);
    return out;
}

// Forwards to a FakeEventRegistry and keeps a copy of every handler, so a
// test can run one after its fd was removed (as a real loop may, once).
class RecordingRegistry final : public EventRegistry {
public:
    explicit RecordingRegistry(FakeEventRegistry& inner) : m_inner(inner) {}
    void add(int fd, Handler handler) override {
        handlers.emplace_back(fd, handler);
        m_inner.add(fd, std::move(handler));
    }
    void remove(int fd) override { m_inner.remove(fd); }
    std::vector<std::pair<int, Handler>> handlers;

private:
    FakeEventRegistry& m_inner;
};

}  // namespace

TEST_CASE("Activation subscribes the queues, the retry timer and the first backend fd, reset removes all",
          "[net][lifecycle]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet | net_feature(VIRTIO_NET_F_GUEST_CSUM)));
    CHECK(rig.events.size() == 5);  // rx, tx and ctrl kicks, tx timer, backend
    CHECK(rig.events.contains(rig.kick_fd(0)));
    CHECK(rig.events.contains(rig.kick_fd(1)));
    CHECK(rig.events.contains(rig.kick_fd(2)));
    CHECK(rig.events.contains(rig.backend_fd()));
    CHECK(rig.backend->offload_calls == std::vector<unsigned>{TUN_F_CSUM});
    CHECK_FALSE(rig.device().activate(virtio::ActivationContext{rig.memory(), {}, {}, 0, rig.notifier, rig.events}));

    // Traffic before the reset: a frame too large for the buffer without MRG_RXBUF.
    rig.post_rx({{1000}});
    rig.tap_send(packet(3000, 1));
    rig.run();
    CHECK(rig.counter("rx_dropped") == 1);

    rig.reset();
    CHECK(rig.events.size() == 0);
    CHECK(rig.backend->offload_calls == std::vector<unsigned>{TUN_F_CSUM, 0});
    CHECK(rig.events.run_ready() == 0);

    // Activates again from scratch.
    REQUIRE(rig.activate(kMergeable));
    CHECK(rig.events.size() == 5);
    rig.post_rx({{1000}, {1000}, {1000}});
    rig.tap_send(packet(2500, 2));
    rig.run();
    CHECK(rig.driver(NetRig::rxq()).used_entries().size() == 3);
}

TEST_CASE("Reset drops a frame waiting for buffers and forgets the driver's settings", "[net][lifecycle]") {
    NetRig rig;
    REQUIRE(rig.activate(kMergeable));
    rig.post_rx({{1000}});
    rig.tap_send(packet(5000, 1));
    rig.run();
    CHECK_FALSE(rig.events.contains(rig.backend_fd()));  // waiting for buffers
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, {0}).ack == VIRTIO_NET_OK);
    rig.reset();
    CHECK(rig.counter("rx_dropped") == 1);
    CHECK(rig.device().rx_filter().promisc);  // the default again
    CHECK(rig.backend->offload_calls == std::vector<unsigned>{0});  // nothing to clear
}

TEST_CASE("A handler that runs after reset does nothing", "[net][lifecycle]") {
    NetRig rig;
    RecordingRegistry recording(rig.events);
    REQUIRE(rig.activate(kBasicNet, nullptr, &recording));
    rig.driver(NetRig::txq()).add_chain({packet(100, 1)}, {});
    rig.driver(NetRig::txq()).publish();
    rig.kick(NetRig::txq());
    rig.tap_send(packet(100, 2));
    rig.device().reset();
    REQUIRE_FALSE(recording.handlers.empty());
    for (auto& [fd, handler] : recording.handlers) handler();
    CHECK_FALSE(rig.tap_has_data());
    CHECK(rig.driver(NetRig::txq()).used_idx() == 0);
    CHECK(rig.counter("tx_packets") == 0);
    CHECK(rig.counter("rx_packets") == 0);
}

TEST_CASE("Queues the driver left disabled are not served", "[net][lifecycle]") {
    NetRig rig;
    // Only the transmit queue: no receive, no control queue.
    REQUIRE(rig.activate(kBasicNet, [](size_t q) { return q == NetRig::txq(); }));
    CHECK(rig.events.size() == 2);  // tx kick and timer
    CHECK_FALSE(rig.events.contains(rig.backend_fd()));
    rig.send_tx({packet(80, 1)});
    rig.run();
    CHECK(rig.tap_recv() == packet(80, 1));
    rig.tap_send(packet(80, 2));
    CHECK(rig.events.run_ready() == 0);
}

TEST_CASE("A backend that refuses the offloads still activates, delivering plain frames only", "[net][lifecycle]") {
    NetRig rig;
    rig.backend->fail_set_offloads = true;
    REQUIRE(rig.activate(kMergeable | net_feature(VIRTIO_NET_F_GUEST_CSUM) | net_feature(VIRTIO_NET_F_GUEST_TSO4)));
    CHECK(rig.device().guest_offloads() == 0u);
    rig.post_rx({{70000}});
    rig.tap_send(packet(100, 1, make_header(VIRTIO_NET_HDR_F_NEEDS_CSUM)));
    rig.tap_send(packet(100, 2));
    rig.run();
    CHECK(rig.counter("rx_dropped") == 1);
    CHECK(rig.counter("rx_packets") == 1);
    CHECK_FALSE(rig.notifier.needs_reset());
}

TEST_CASE("Without MQ negotiated a multiqueue device uses one pair and queue 2 for control", "[net][mq]") {
    NetRig rig(2);
    REQUIRE((rig.device().device_features() & net_feature(VIRTIO_NET_F_MQ)) != 0);
    REQUIRE(rig.activate(kBasicNet));
    CHECK(rig.ctrlq() == 2);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, {1}).ack == VIRTIO_NET_OK);
    CHECK_FALSE(rig.events.contains(rig.kick_fd(3)));
    CHECK_FALSE(rig.events.contains(rig.backend_fd(1)));
    CHECK(rig.device().active_queue_pairs() == 1);
}

TEST_CASE("With MQ only the first pair receives until VQ_PAIRS_SET, transmit queues always work", "[net][mq]") {
    NetRig rig(3);
    REQUIRE(rig.activate(kMergeable | net_feature(VIRTIO_NET_F_MQ)));
    CHECK(rig.ctrlq() == 6);
    CHECK(rig.events.contains(rig.kick_fd(6)));
    CHECK(rig.events.contains(rig.backend_fd(0)));
    CHECK_FALSE(rig.events.contains(rig.backend_fd(1)));
    CHECK_FALSE(rig.events.contains(rig.backend_fd(2)));

    rig.post_rx({{2000}}, 1);
    rig.tap_send(packet(100, 1), 1);
    rig.run();
    CHECK(rig.driver(NetRig::rxq(1)).used_entries().empty());

    // Queues of inactive pairs are detached from the TAP: it steers nothing
    // there, and their frames leave through pair 0.
    CHECK(rig.backend->attached == std::vector<bool>{true, false, false});
    rig.send_tx({packet(70, 3)}, 2);
    rig.run();
    CHECK(rig.tap_recv(0) == packet(70, 3));

    CHECK(rig.ctrl(VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, bytes_of(uint16_t{0})).ack == VIRTIO_NET_ERR);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, bytes_of(uint16_t{4})).ack == VIRTIO_NET_ERR);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_MQ, 1 /* RSS */, {}).ack == VIRTIO_NET_ERR);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, {2}).ack == VIRTIO_NET_ERR);  // short
    CHECK(rig.device().active_queue_pairs() == 1);

    rig.backend->fail_attach = true;  // e.g. no CAP_NET_ADMIN for TUNSETQUEUE
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, bytes_of(uint16_t{2})).ack == VIRTIO_NET_ERR);
    CHECK(rig.device().active_queue_pairs() == 1);
    rig.backend->fail_attach = false;

    CHECK(rig.ctrl(VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, bytes_of(uint16_t{2})).ack == VIRTIO_NET_OK);
    CHECK(rig.device().active_queue_pairs() == 2);
    CHECK(rig.backend->attached == std::vector<bool>{true, true, false});
    rig.send_tx({packet(71, 5)}, 1);
    rig.run();
    CHECK(rig.tap_recv(1) == packet(71, 5));
    rig.run();
    const auto used = rig.driver(NetRig::rxq(1)).used_entries();
    REQUIRE(used.size() == 1);
    CHECK(rig.events.contains(rig.backend_fd(1)) == false);  // delivered, then out of buffers
    CHECK_FALSE(rig.events.contains(rig.backend_fd(2)));

    CHECK(rig.ctrl(VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, bytes_of(uint16_t{3})).ack == VIRTIO_NET_OK);
    CHECK(rig.events.contains(rig.backend_fd(2)));
    CHECK(rig.backend->attached == std::vector<bool>{true, true, true});
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, bytes_of(uint16_t{1})).ack == VIRTIO_NET_OK);
    CHECK(rig.backend->attached == std::vector<bool>{true, false, false});
    CHECK_FALSE(rig.events.contains(rig.backend_fd(1)));
    CHECK_FALSE(rig.events.contains(rig.backend_fd(2)));
    rig.post_rx({{2000}}, 1);
    rig.tap_send(packet(100, 4), 1);
    rig.run();
    CHECK(rig.driver(NetRig::rxq(1)).used_entries().empty());
    CHECK(rig.counter("rx_dropped") == 0);
    rig.reset();
    CHECK(rig.device().active_queue_pairs() == 1);
    CHECK(rig.events.size() == 0);
}

TEST_CASE("Counters can be read from another thread while frames flow", "[net][lifecycle]") {
    NetRig rig;
    REQUIRE(rig.activate(kMergeable));
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> reads{0};
    std::thread reader([&] {
        while (!stop.load()) {
            for (const auto& [name, value] : rig.device().counters()) reads += value > 0 ? 1 : 0;
            (void)rig.device().mac();
        }
    });
    for (int round = 0; round < 50; ++round) {
        rig.post_rx({{2000}, {2000}});
        rig.tap_send(packet(500, static_cast<uint8_t>(round)));
        rig.send_tx({packet(500, static_cast<uint8_t>(round))});
        rig.run();
        (void)rig.driver(NetRig::rxq()).used_entries();
        (void)rig.driver(NetRig::txq()).used_entries();
        (void)rig.tap_recv();
    }
    stop = true;
    reader.join();
    CHECK(rig.counter("rx_packets") == 50);
    CHECK(rig.counter("tx_packets") == 50);
    CHECK(rig.counter("rx_bytes") == 50 * 500);
}

TEST_CASE("virtio-net end to end behind the virtio-mmio transport", "[net][mmio]") {
    auto state = make_backend_state(1);
    auto device = std::make_shared<VirtioNet>(test_config(), std::make_unique<SocketpairBackend>(state));
    MmioHarness<VirtioNet> h(device);
    FakeDriverQueue rx(h.memory, 64, Gpa{0});
    FakeDriverQueue tx(h.memory, 64, Gpa{0x40000});
    FakeDriverQueue ctrl(h.memory, 64, Gpa{0x80000});
    REQUIRE(h.negotiate(kMergeable));
    h.setup_queue(0, rx);
    h.setup_queue(1, tx);
    h.setup_queue(2, ctrl);
    h.driver_ok();
    REQUIRE((h.status() & kStatusDriverOk) != 0);
    CHECK(h.read32(VIRTIO_MMIO_DEVICE_ID) == VIRTIO_ID_NET);

    rx.submit(std::vector<std::vector<uint8_t>>{}, {2000});
    h.notify(0);
    REQUIRE(::send(state->peer_fds[0].get(), packet(300, 1).data(), kHdr + 300, 0) == static_cast<ssize_t>(kHdr + 300));
    tx.submit(std::vector<std::vector<uint8_t>>{packet(200, 2)}, {});
    h.notify(1);
    ctrl.submit(std::vector<std::vector<uint8_t>>{{VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 0}}, {1});
    h.notify(2);
    h.events.run_ready();

    const auto received = rx.used_entries();
    REQUIRE(received.size() == 1);
    CHECK(received[0].len == kHdr + 300);
    std::vector<uint8_t> sent(4096);
    CHECK(::recv(state->peer_fds[0].get(), sent.data(), sent.size(), MSG_DONTWAIT) == static_cast<ssize_t>(kHdr + 200));
    CHECK(tx.used_entries().size() == 1);
    CHECK(ctrl.used_entries().size() == 1);
    CHECK_FALSE(device->rx_filter().promisc);
    CHECK(h.irq->count >= 1);
    CHECK((h.status() & kStatusNeedsReset) == 0);

    h.write32(VIRTIO_MMIO_STATUS, 0);  // reset
    CHECK(h.events.size() == 0);
}
