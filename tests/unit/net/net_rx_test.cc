// virtio-net receive path (virtio 1.2 §5.1.6.3, §5.1.6.4): frame placement
// with and without MRG_RXBUF, back-pressure when the driver has no buffers,
// and chains that cannot be receive buffers.

#include <catch2/catch.hpp>

#include "net_test_support.h"

using namespace keel;
using namespace keel::test;
using virtio::VirtioNet;

namespace {

// The bytes of used entries `used` of the receive queue, concatenated.
std::vector<uint8_t> received(NetRig& rig, const std::vector<UsedEntry>& used, size_t pair = 0) {
    std::vector<uint8_t> out;
    for (const auto& e : used) {
        const auto bytes = rig.driver(NetRig::rxq(pair)).written(static_cast<uint16_t>(e.id), e.len);
        out.insert(out.end(), bytes.begin(), bytes.end());
    }
    return out;
}

// What the guest must see for a TAP message: num_buffers filled in.
std::vector<uint8_t> with_num_buffers(std::vector<uint8_t> message, uint16_t num_buffers) {
    std::memcpy(message.data() + offsetof(virtio_net_hdr_v1, num_buffers), &num_buffers, sizeof num_buffers);
    return message;
}

}  // namespace

TEST_CASE("A received frame lands in one buffer with num_buffers 1 without MRG_RXBUF", "[net][rx]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));
    CHECK(rig.events.contains(rig.backend_fd()));
    const auto heads = rig.post_rx({{1526}});
    rig.tap_send(packet(1000, 1));
    rig.run();
    const auto used = rig.driver(NetRig::rxq()).used_entries();
    REQUIRE(used.size() == 1);
    CHECK(used[0] == UsedEntry{heads[0], kHdr + 1000});
    CHECK(received(rig, used) == with_num_buffers(packet(1000, 1), 1));
    CHECK(rig.notifier.used_signals(NetRig::rxq()) == 1);
    CHECK(rig.counter("rx_packets") == 1);
    CHECK(rig.counter("rx_bytes") == 1000);
    CHECK(rig.counter("rx_dropped") == 0);
    // A frame exactly as large as the buffer, spread over its descriptors.
    const auto exact_head = rig.post_rx({{12, 500, 1014}})[0];
    rig.tap_send(packet(1514, 2));
    rig.run();
    const auto exact = rig.driver(NetRig::rxq()).used_entries();
    REQUIRE(exact.size() == 1);
    CHECK(exact[0] == UsedEntry{exact_head, 1526});
    CHECK(received(rig, exact) == with_num_buffers(packet(1514, 2), 1));
}

TEST_CASE("Offload headers pass through to the guest when it negotiated them", "[net][rx]") {
    NetRig rig;
    REQUIRE(rig.activate(kMergeable | net_feature(VIRTIO_NET_F_GUEST_CSUM) | net_feature(VIRTIO_NET_F_GUEST_TSO4)));
    CHECK(rig.backend->offload_calls == std::vector<unsigned>{TUN_F_CSUM | TUN_F_TSO4});
    CHECK(rig.device().guest_offloads() == (TUN_F_CSUM | TUN_F_TSO4));
    auto header = make_header(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4);
    header.hdr_len = 66;
    header.gso_size = 1448;
    header.csum_start = 34;
    header.csum_offset = 16;
    rig.post_rx({{65562}});
    rig.tap_send(packet(20000, 3, header));
    rig.run();
    const auto used = rig.driver(NetRig::rxq()).used_entries();
    REQUIRE(used.size() == 1);
    const auto bytes = received(rig, used);
    CHECK(bytes == with_num_buffers(packet(20000, 3, header), 1));
    CHECK(parse_header(bytes).gso_size == 1448);
}

TEST_CASE("Headers the guest cannot take are fixed or their frames dropped", "[net][rx]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));  // no GUEST_CSUM
    CHECK(rig.backend->offload_calls == std::vector<unsigned>{0});
    rig.post_rx({{2000}, {2000}});
    rig.tap_send(packet(100, 1, make_header(VIRTIO_NET_HDR_F_NEEDS_CSUM)));  // dropped
    rig.tap_send(packet(100, 2, make_header(0, VIRTIO_NET_HDR_GSO_TCPV4)));  // dropped
    rig.tap_send(packet(100, 3, make_header(VIRTIO_NET_HDR_F_DATA_VALID)));  // flags cleared
    rig.run();
    const auto used = rig.driver(NetRig::rxq()).used_entries();
    REQUIRE(used.size() == 1);
    CHECK(received(rig, used) == with_num_buffers(packet(100, 3), 1));
    CHECK(rig.counter("rx_dropped") == 2);
    CHECK(rig.counter("rx_packets") == 1);
    // Not even a header, or a message that may have been truncated.
    rig.tap_send(std::vector<uint8_t>(5, 1));
    rig.tap_send(packet(VirtioNet::kRxBufferSize + 100, 4));
    rig.tap_send(packet(60, 5));
    rig.run();
    const auto after = rig.driver(NetRig::rxq()).used_entries();
    REQUIRE(after.size() == 1);
    CHECK(received(rig, after) == with_num_buffers(packet(60, 5), 1));
    CHECK(rig.counter("rx_dropped") == 4);
    CHECK_FALSE(rig.notifier.needs_reset());
}

TEST_CASE("With MRG_RXBUF a frame spreads over as many buffers as it needs", "[net][rx]") {
    NetRig rig;
    REQUIRE(rig.activate(kMergeable));
    auto& driver = rig.driver(NetRig::rxq());

    SECTION("split over several chains, num_buffers in the first") {
        const auto heads = rig.post_rx({{1500}, {1500}, {1500}, {1500}, {1500}});
        rig.tap_send(packet(5000, 1));
        rig.run();
        const auto used = driver.used_entries();
        REQUIRE(used.size() == 4);
        CHECK(used[0] == UsedEntry{heads[0], 1500});
        CHECK(used[1] == UsedEntry{heads[1], 1500});
        CHECK(used[2] == UsedEntry{heads[2], 1500});
        CHECK(used[3] == UsedEntry{heads[3], kHdr + 5000 - 4500});
        CHECK(received(rig, used) == with_num_buffers(packet(5000, 1), 4));
        CHECK(rig.notifier.used_signals(NetRig::rxq()) == 1);
        // The fifth chain takes the next frame.
        rig.tap_send(packet(100, 2));
        rig.run();
        const auto next = driver.used_entries();
        REQUIRE(next.size() == 1);
        CHECK(next[0].id == heads[4]);
        CHECK(received(rig, next) == with_num_buffers(packet(100, 2), 1));
    }
    SECTION("a frame exactly filling two chains uses no third") {
        const auto heads = rig.post_rx({{1000}, {1000}, {1000}});
        rig.tap_send(packet(2000 - kHdr, 3));
        rig.run();
        const auto used = driver.used_entries();
        REQUIRE(used.size() == 2);
        CHECK(used[1] == UsedEntry{heads[1], 1000});
        CHECK(received(rig, used) == with_num_buffers(packet(2000 - kHdr, 3), 2));
    }
    SECTION("tiny buffers of header size, and multi-descriptor chains") {
        std::vector<std::vector<uint32_t>> chains(20, std::vector<uint32_t>{12});
        chains.push_back({4, 4, 4, 100});
        rig.post_rx(chains);
        rig.tap_send(packet(200, 4));
        rig.run();
        const auto used = driver.used_entries();
        REQUIRE(used.size() == 18);  // 17 * 12 = 204 < 212 <= 18 * 12
        CHECK(used.back().len == 212 - 17 * 12);
        CHECK(received(rig, used) == with_num_buffers(packet(200, 4), 18));
    }
    SECTION("a 64 KiB frame over 4 KiB pages") {
        std::vector<std::vector<uint32_t>> chains(17, std::vector<uint32_t>{4096});
        rig.post_rx(chains);
        rig.tap_send(packet(65535, 5));
        rig.run();
        const auto used = driver.used_entries();
        REQUIRE(used.size() == 17);
        CHECK(received(rig, used) == with_num_buffers(packet(65535, 5), 17));
        CHECK(rig.counter("rx_bytes") == 65535);
    }
    CHECK(rig.counter("rx_dropped") == 0);
}

TEST_CASE("Without MRG_RXBUF a buffer too small for the frame drops the frame, not the device", "[net][rx]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));
    const auto heads = rig.post_rx({{500}, {2000}});
    rig.tap_send(packet(1000, 1));
    rig.tap_send(packet(1000, 2));
    rig.run();
    const auto used = rig.driver(NetRig::rxq()).used_entries();
    REQUIRE(used.size() == 2);
    CHECK(used[0] == UsedEntry{heads[0], 0});
    CHECK(used[1] == UsedEntry{heads[1], kHdr + 1000});
    CHECK(received(rig, {used[1]}) == with_num_buffers(packet(1000, 2), 1));
    CHECK(rig.counter("rx_dropped") == 1);
    CHECK(rig.counter("errors") == 0);
    CHECK_FALSE(rig.notifier.needs_reset());
}

TEST_CASE("Without receive buffers the device stops reading, a kick delivers everything in order", "[net][rx]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));
    for (uint8_t i = 0; i < 5; ++i) rig.tap_send(packet(300, i));
    rig.run();
    // Nothing read, nothing dropped, and the backend fd left alone: no spin.
    CHECK_FALSE(rig.events.contains(rig.backend_fd()));
    pollfd waiting{rig.backend_fd(), POLLIN, 0};
    CHECK(::poll(&waiting, 1, 0) == 1);  // the frames wait in the backend
    CHECK(rig.counter("rx_dropped") == 0);
    CHECK(rig.events.run_ready() == 0);

    rig.post_rx({{2000}, {2000}});
    rig.run();
    auto used = rig.driver(NetRig::rxq()).used_entries();
    REQUIRE(used.size() == 2);
    CHECK(received(rig, {used[0]}) == with_num_buffers(packet(300, 0), 1));
    CHECK(received(rig, {used[1]}) == with_num_buffers(packet(300, 1), 1));
    CHECK_FALSE(rig.events.contains(rig.backend_fd()));  // starved again

    rig.post_rx({{2000}, {2000}, {2000}, {2000}});
    rig.run();
    used = rig.driver(NetRig::rxq()).used_entries();
    REQUIRE(used.size() == 3);
    for (uint8_t i = 0; i < 3; ++i) CHECK(received(rig, {used[i]}) == with_num_buffers(packet(300, i + 2), 1));
    // One buffer left over: the device watches the backend again.
    CHECK(rig.events.contains(rig.backend_fd()));
    rig.tap_send(packet(300, 9));
    rig.run();
    CHECK(rig.driver(NetRig::rxq()).used_entries().size() == 1);
    CHECK(rig.counter("rx_packets") == 6);
    CHECK(rig.counter("rx_dropped") == 0);
}

TEST_CASE("With MRG_RXBUF a frame waits in the device until enough buffers arrive", "[net][rx]") {
    NetRig rig;
    REQUIRE(rig.activate(kMergeable));
    auto& driver = rig.driver(NetRig::rxq());
    rig.post_rx({{1000}});
    rig.tap_send(packet(2900, 1));
    rig.tap_send(packet(50, 2));
    rig.run();
    CHECK(driver.used_entries().empty());
    CHECK_FALSE(rig.events.contains(rig.backend_fd()));
    rig.post_rx({{1000}});
    rig.run();
    CHECK(driver.used_entries().empty());
    rig.post_rx({{1000}, {1000}});
    rig.run();
    const auto used = driver.used_entries();
    REQUIRE(used.size() == 4);
    CHECK(received(rig, {used[0], used[1], used[2]}) == with_num_buffers(packet(2900, 1), 3));
    CHECK(received(rig, {used[3]}) == with_num_buffers(packet(50, 2), 1));
    CHECK(rig.counter("rx_dropped") == 0);
}

TEST_CASE("A frame larger than the driver's whole ring is dropped and its buffers returned", "[net][rx]") {
    NetRig rig(1, kAllOffloads, 4);
    REQUIRE(rig.activate(kMergeable));
    const auto heads = rig.post_rx({{100}, {100}, {100}, {100}});
    rig.tap_send(packet(1000, 1));
    rig.tap_send(packet(50, 2));
    rig.run();
    auto used = rig.driver(NetRig::rxq()).used_entries();
    REQUIRE(used.size() == 4);
    for (size_t i = 0; i < 4; ++i) CHECK(used[i] == UsedEntry{heads[i], 0});
    CHECK(rig.counter("rx_dropped") == 1);
    rig.post_rx({{100}});
    rig.run();
    used = rig.driver(NetRig::rxq()).used_entries();
    REQUIRE(used.size() == 1);
    CHECK(received(rig, used) == with_num_buffers(packet(50, 2), 1));
}

TEST_CASE("Receive chains that cannot hold a frame are returned unused, the frame takes the next", "[net][rx]") {
    NetRig rig;
    const bool mergeable = GENERATE(false, true);
    REQUIRE(rig.activate(mergeable ? kMergeable : kBasicNet));
    auto& driver = rig.driver(NetRig::rxq());
    const uint16_t readable = driver.add_chain({{1, 2, 3}}, {2000});
    const uint16_t too_small = driver.add_chain({}, {11});
    const uint16_t zero_lengths = driver.add_chain({}, {0, 0});  // no writable bytes at all
    const uint16_t good = driver.add_chain({}, {0, 2000, 0});
    driver.publish();
    rig.kick(NetRig::rxq());
    rig.tap_send(packet(100, 1));
    rig.run();
    const auto used = driver.used_entries();
    REQUIRE(used.size() == 4);
    CHECK(used[0] == UsedEntry{readable, 0});
    CHECK(used[1] == UsedEntry{too_small, 0});
    CHECK(used[2] == UsedEntry{zero_lengths, 0});
    CHECK(used[3] == UsedEntry{good, kHdr + 100});
    CHECK(received(rig, {used[3]}) == with_num_buffers(packet(100, 1), 1));
    CHECK(rig.counter("errors") == 3);
    CHECK(rig.counter("rx_dropped") == 0);
    CHECK_FALSE(rig.notifier.needs_reset());
}

TEST_CASE("A huge receive buffer gets the frame and nothing more", "[net][rx]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));
    const uint16_t head = rig.post_rx({{512 * 1024}})[0];
    rig.tap_send(packet(1500, 1));
    rig.run();
    const auto used = rig.driver(NetRig::rxq()).used_entries();
    REQUIRE(used.size() == 1);
    CHECK(used[0] == UsedEntry{head, kHdr + 1500});
    const auto bytes = rig.driver(NetRig::rxq()).written(head, kHdr + 1600);
    CHECK(
        std::all_of(bytes.begin() + kHdr + 1500, bytes.end(), [](uint8_t b) { return b == FakeDriverQueue::kPoison; }));
}

TEST_CASE("Indirect receive chains are filled like direct ones", "[net][rx]") {
    NetRig rig;
    REQUIRE(rig.activate(kMergeable));
    auto& driver = rig.driver(NetRig::rxq());
    driver.add_indirect_chain({}, {12, 700, 800});
    driver.add_indirect_chain({}, {1000});
    driver.publish();
    rig.kick(NetRig::rxq());
    rig.tap_send(packet(2000, 1));
    rig.run();
    const auto used = driver.used_entries();
    REQUIRE(used.size() == 2);
    CHECK(used[0].len == 1512);
    CHECK(received(rig, used) == with_num_buffers(packet(2000, 1), 2));
}

TEST_CASE("A receive chain that breaks the queue protocol stops the device and its backend watch", "[net][rx]") {
    NetRig rig;
    REQUIRE(rig.activate(kMergeable));
    auto& driver = rig.driver(NetRig::rxq());
    SECTION("buffer outside guest memory") {
        driver.write_descriptor(0, 16ull << 30, 2000, VRING_DESC_F_WRITE, 0);
    }
    SECTION("readable after writable") {
        driver.write_descriptor(0, driver.data_start().value, 100, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
        driver.write_descriptor(1, driver.data_start().value, 100, 0, 0);
    }
    SECTION("avail index jump") {
        driver.set_avail_idx(1000);
    }
    SECTION("descriptor loop") {
        driver.write_descriptor(0, driver.data_start().value, 100, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
        driver.write_descriptor(1, driver.data_start().value, 100, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
    }
    SECTION("a 4 GiB length running past guest memory") {
        driver.write_descriptor(0, driver.data_start().value, 0xffff'ffff, VRING_DESC_F_WRITE, 0);
    }
    driver.push_avail(0);
    driver.publish();
    rig.kick(NetRig::rxq());
    rig.tap_send(packet(100, 1));
    rig.run();
    CHECK(rig.notifier.needs_reset());
    CHECK_FALSE(rig.events.contains(rig.backend_fd()));
    CHECK(rig.events.run_ready() == 0);  // nothing spins
    CHECK(rig.counter("errors") == 1);
}

TEST_CASE("A backend at end of file is not watched until the driver kicks again", "[net][rx]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));
    rig.post_rx({{2000}});
    rig.run();
    CHECK(rig.events.contains(rig.backend_fd()));
    rig.backend->peer_fds[0].reset();  // the TAP side goes away
    rig.run();
    CHECK_FALSE(rig.events.contains(rig.backend_fd()));
    CHECK(rig.counter("errors") == 1);
    CHECK(rig.events.run_ready() == 0);
    CHECK_FALSE(rig.notifier.needs_reset());
}

TEST_CASE("Receive serves a bounded batch per wakeup", "[net][rx]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));
    std::vector<std::vector<uint32_t>> chains(VirtioNet::kBatch + 5, std::vector<uint32_t>{200});
    rig.post_rx(chains);
    rig.run();
    for (size_t i = 0; i < VirtioNet::kBatch + 5; ++i) rig.tap_send(packet(60, static_cast<uint8_t>(i)));
    REQUIRE(rig.events.run(rig.backend_fd()));
    CHECK(rig.driver(NetRig::rxq()).used_entries().size() == VirtioNet::kBatch);
    CHECK(rig.events.contains(rig.backend_fd()));
    rig.run();
    const auto rest = rig.driver(NetRig::rxq()).used_entries();
    REQUIRE(rest.size() == 5);
    CHECK(received(rig, {rest.back()}) == with_num_buffers(packet(60, VirtioNet::kBatch + 4), 1));
}

TEST_CASE("A frame read before the batch ran out of skipped chains still reaches the next buffers", "[net][rx]") {
    // With MRG_RXBUF the device reads a frame once it holds one chain, then
    // collects more; a driver that posts a batch of unusable chains in
    // between uses up the wakeup with the frame read but not placed. The
    // backend fd has nothing more to say, so the device must come back by
    // itself.
    NetRig rig;
    REQUIRE(rig.activate(kMergeable));
    auto& driver = rig.driver(NetRig::rxq());
    const uint16_t first = driver.add_chain({}, {1000});
    for (uint32_t i = 0; i < VirtioNet::kBatch; ++i) driver.add_chain({{1}}, {100});  // readable part: skipped
    const uint16_t second = driver.add_chain({}, {2000});
    driver.publish();
    rig.tap_send(packet(1500, 9));
    rig.kick(NetRig::rxq());
    rig.run();
    const auto used = driver.used_entries();
    REQUIRE(used.size() == VirtioNet::kBatch + 2);
    CHECK(used[VirtioNet::kBatch] == UsedEntry{first, 1000});
    CHECK(used[VirtioNet::kBatch + 1] == UsedEntry{second, kHdr + 1500 - 1000});
    CHECK(received(rig, {used[VirtioNet::kBatch], used[VirtioNet::kBatch + 1]}) ==
          with_num_buffers(packet(1500, 9), 2));
    CHECK(rig.counter("errors") == VirtioNet::kBatch);
    CHECK_FALSE(rig.notifier.needs_reset());
}
