// virtio-net transmit path (virtio 1.2 §5.1.6.2): guest chains reach the
// backend as one [header][frame] message each; bad chains are refused
// without stopping the device; a full backend delays and then drops.

#include <sys/socket.h>

#include <catch2/catch.hpp>

#include "net_test_support.h"

using namespace keel;
using namespace keel::test;
using virtio::VirtioNet;

namespace {

// Splits `bytes` into buffers of the given sizes (the last takes the rest).
std::vector<std::vector<uint8_t>> split(const std::vector<uint8_t>& bytes, const std::vector<size_t>& sizes) {
    std::vector<std::vector<uint8_t>> out;
    size_t at = 0;
    for (const size_t size : sizes) {
        const size_t n = std::min(size, bytes.size() - at);
        out.emplace_back(bytes.begin() + static_cast<ptrdiff_t>(at), bytes.begin() + static_cast<ptrdiff_t>(at + n));
        at += n;
    }
    if (at < bytes.size()) out.emplace_back(bytes.begin() + static_cast<ptrdiff_t>(at), bytes.end());
    return out;
}

// Shrinks the device side's send buffer so a few frames fill it.
void shrink_send_buffer(int fd) {
    const int size = 4096;  // the kernel doubles it
    REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) == 0);
}

}  // namespace

TEST_CASE("A transmitted chain reaches the backend as header and frame, with the header as the guest wrote it",
          "[net][tx]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet | net_feature(VIRTIO_NET_F_CSUM) | net_feature(VIRTIO_NET_F_HOST_TSO4)));
    auto header = make_header(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4);
    header.hdr_len = 66;
    header.gso_size = 1448;
    header.csum_start = 34;
    header.csum_offset = 16;
    const auto frame = frame_bytes(3000, 7);
    const uint16_t head = rig.send_tx({header_bytes(header), frame});
    rig.run();

    const auto sent = rig.tap_recv();
    REQUIRE(sent);
    CHECK(*sent == concat(header_bytes(header), frame));
    CHECK_FALSE(rig.tap_has_data());
    const auto used = rig.driver(NetRig::txq()).used_entries();
    REQUIRE(used.size() == 1);
    CHECK(used[0] == UsedEntry{head, 0});  // nothing written into a transmit chain
    CHECK(rig.notifier.used_signals(NetRig::txq()) == 1);
    CHECK(rig.counter("tx_packets") == 1);
    CHECK(rig.counter("tx_bytes") == 3000);
    CHECK(rig.counter("tx_dropped") == 0);
    CHECK(rig.counter("errors") == 0);
    CHECK(rig.counter("used_notifications") == 1);
}

TEST_CASE("Transmit gathers a frame from any split of descriptors, direct or indirect", "[net][tx]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));
    const auto message = packet(5000, 3);
    const bool indirect = GENERATE(false, true);
    INFO("indirect " << indirect);
    std::vector<std::vector<std::vector<uint8_t>>> shapes{
        split(message, {kHdr}),                      // header, then frame
        split(message, {5, 7}),                      // header split across descriptors
        split(message, {kHdr + 100}),                // header and frame share one
        split(message, {1, 1, 1, 1, 7, 1, 100, 3}),  // odd pieces
        {message},                                   // one buffer
    };
    // 100 buffers: more than the device's iovec array, so it copies.
    std::vector<size_t> many(99, 50);
    shapes.push_back(split(message, many));
    for (const auto& shape : shapes) {
        INFO("buffers " << shape.size());
        rig.send_tx(shape, 0, indirect);
        rig.run();
        const auto sent = rig.tap_recv();
        REQUIRE(sent);
        CHECK(*sent == message);
        CHECK(rig.driver(NetRig::txq()).used_entries().size() == 1);
    }
    CHECK(rig.counter("tx_packets") == shapes.size());
    CHECK(rig.counter("errors") == 0);
    CHECK_FALSE(rig.notifier.needs_reset());
}

TEST_CASE("Zero-length descriptors inside a transmit chain are skipped", "[net][tx]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));
    const auto message = packet(200, 9);
    rig.send_tx({{},
                 std::vector<uint8_t>(message.begin(), message.begin() + 12),
                 {},
                 std::vector<uint8_t>(message.begin() + 12, message.end()),
                 {}});
    rig.run();
    const auto sent = rig.tap_recv();
    REQUIRE(sent);
    CHECK(*sent == message);
}

TEST_CASE("The largest frame is sent, anything that is not a frame is refused without stopping the device",
          "[net][tx]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));
    auto& driver = rig.driver(NetRig::txq());

    const auto largest = packet(VirtioNet::kMaxTxFrame, 1);
    rig.send_tx(split(largest, {kHdr, 30000}));
    rig.run();
    const auto sent = rig.tap_recv();
    REQUIRE(sent);
    CHECK(sent->size() == kHdr + VirtioNet::kMaxTxFrame);
    CHECK(driver.used_entries().size() == 1);

    struct Bad {
        const char* what;
        std::vector<std::vector<uint8_t>> readable;
        std::vector<uint32_t> writable;
    };
    const std::vector<Bad> bad{
        {"writable part", {packet(100, 1)}, {64}},
        {"only writable", {}, {64}},
        {"header only", {header_bytes(make_header())}, {}},
        {"shorter than the header", {std::vector<uint8_t>(5, 0)}, {}},
        {"above 64 KiB", split(packet(VirtioNet::kMaxTxFrame + 1, 2), {kHdr, 40000}), {}},
    };
    uint64_t errors = 0;
    for (const auto& b : bad) {
        INFO(b.what);
        const uint16_t head = driver.add_chain(b.readable, b.writable);
        driver.publish();
        rig.kick(NetRig::txq());
        rig.run();
        const auto used = driver.used_entries();
        REQUIRE(used.size() == 1);
        CHECK(used[0] == UsedEntry{head, 0});
        CHECK_FALSE(rig.tap_has_data());
        CHECK(rig.counter("errors") == ++errors);
    }
    CHECK_FALSE(rig.notifier.needs_reset());
    // Still serving.
    rig.send_tx({packet(60, 4)});
    rig.run();
    CHECK(rig.tap_recv() == packet(60, 4));
    CHECK(rig.counter("tx_packets") == 2);
    CHECK(rig.counter("tx_dropped") == 0);
}

TEST_CASE("A chain that breaks the queue protocol stops the device with NEEDS_RESET", "[net][tx]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));
    auto& driver = rig.driver(NetRig::txq());
    SECTION("buffer outside guest memory") {
        driver.write_descriptor(0, 64ull << 20, 100, 0, 0);
    }
    SECTION("descriptor loop") {
        driver.write_descriptor(0, driver.data_start().value, 12, VRING_DESC_F_NEXT, 1);
        driver.write_descriptor(1, driver.data_start().value, 12, VRING_DESC_F_NEXT, 0);
    }
    SECTION("indirect table outside guest memory") {
        driver.write_descriptor(0, 0xffff'ffff'0000ull, 64, VRING_DESC_F_INDIRECT, 0);
    }
    driver.push_avail(0);
    driver.publish();
    rig.kick(NetRig::txq());
    rig.run();
    CHECK(rig.notifier.needs_reset());
    CHECK(rig.counter("errors") == 1);
    CHECK(driver.used_entries().empty());
    // Broken: later work is ignored, and the backend fd is no longer watched.
    CHECK_FALSE(rig.events.contains(rig.backend_fd()));
    rig.send_tx({packet(60, 1)});
    rig.run();
    CHECK_FALSE(rig.tap_has_data());
    CHECK(rig.notifier.needs_reset_calls() == 1);
}

TEST_CASE("Transmit serves a bounded batch per wakeup and comes back for the rest", "[net][tx]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));
    auto& driver = rig.driver(NetRig::txq());
    const size_t total = VirtioNet::kBatch + 10;
    for (size_t i = 0; i < total; ++i) driver.add_chain({packet(60, static_cast<uint8_t>(i))}, {});
    driver.publish();
    rig.kick(NetRig::txq());
    REQUIRE(rig.events.run(rig.kick_fd(NetRig::txq())));
    CHECK(driver.used_entries().size() == VirtioNet::kBatch);
    CHECK(rig.notifier.used_signals(NetRig::txq()) == 1);  // one notification per batch
    rig.run();                                             // the device kicked itself
    CHECK(driver.used_entries().size() == 10);
    for (size_t i = 0; i < total; ++i) {
        const auto sent = rig.tap_recv();
        REQUIRE(sent);
        CHECK(*sent == packet(60, static_cast<uint8_t>(i)));  // in order
    }
}

TEST_CASE("A full backend delays a frame, it goes out once there is room, in order", "[net][tx]") {
    NetRig rig;
    shrink_send_buffer(rig.backend_fd());
    REQUIRE(rig.activate(kBasicNet));
    auto& driver = rig.driver(NetRig::txq());
    std::vector<uint16_t> heads;
    for (uint8_t i = 0; i < 8; ++i) heads.push_back(driver.add_chain({packet(3000, i)}, {}));
    driver.publish();
    rig.kick(NetRig::txq());
    rig.run();
    const auto first = driver.used_entries();
    REQUIRE(first.size() < 8);  // the socket filled up
    CHECK(rig.counter("tx_dropped") == 0);

    // A kick meanwhile neither loses nor reorders anything.
    rig.kick(NetRig::txq());
    rig.run();

    std::vector<std::vector<uint8_t>> received;
    size_t completed = first.size();
    REQUIRE(rig.run_until([&] {
        while (auto m = rig.tap_recv()) received.push_back(*m);
        completed += driver.used_entries().size();
        return completed == 8;
    }));
    while (auto m = rig.tap_recv()) received.push_back(*m);
    REQUIRE(received.size() == 8);
    for (uint8_t i = 0; i < 8; ++i) CHECK(received[i] == packet(3000, i));
    CHECK(rig.counter("tx_packets") == 8);
    CHECK(rig.counter("tx_dropped") == 0);
}

TEST_CASE("A frame the backend never takes is dropped after bounded retries and the queue moves on", "[net][tx]") {
    NetRig rig;
    shrink_send_buffer(rig.backend_fd());
    REQUIRE(rig.activate(kBasicNet));
    auto& driver = rig.driver(NetRig::txq());
    // Fill the socket until the device has to wait.
    uint16_t sent = 0;
    for (;;) {
        driver.add_chain({packet(3000, 1)}, {});
        driver.publish();
        rig.kick(NetRig::txq());
        rig.run();
        if (driver.used_idx() != sent + 1) break;
        ++sent;
        REQUIRE(sent < 50);
    }
    // The waiting chain is dropped after the retries, about 51 ms.
    const auto start = std::chrono::steady_clock::now();
    REQUIRE(rig.run_until([&] { return driver.used_idx() == sent + 1; }));
    CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(40));
    CHECK(rig.counter("tx_dropped") == 1);
    CHECK_FALSE(rig.notifier.needs_reset());
    // Once the TAP side reads again, frames flow.
    while (rig.tap_recv()) {
    }
    rig.send_tx({packet(100, 5)});
    REQUIRE(rig.run_until([&] { return driver.used_idx() == sent + 2; }));
    CHECK(rig.tap_recv() == packet(100, 5));
}

TEST_CASE("A frame the backend refuses for good is dropped at once", "[net][tx]") {
    NetRig rig;
    shrink_send_buffer(rig.backend_fd());
    REQUIRE(rig.activate(kBasicNet));
    // A message larger than the socket's send buffer: EMSGSIZE.
    const uint16_t head = rig.send_tx({packet(30000, 1)});
    rig.run();
    const auto used = rig.driver(NetRig::txq()).used_entries();
    REQUIRE(used.size() == 1);
    CHECK(used[0] == UsedEntry{head, 0});
    CHECK(rig.counter("tx_dropped") == 1);
    CHECK(rig.counter("tx_packets") == 0);
    CHECK_FALSE(rig.notifier.needs_reset());
}

TEST_CASE("Transmit notifications follow the driver's suppression", "[net][tx]") {
    NetRig rig;
    const bool event_idx = GENERATE(false, true);
    REQUIRE(rig.activate(event_idx ? kBasicNet : kBasicNet & ~net_feature(VIRTIO_RING_F_EVENT_IDX)));
    auto& driver = rig.driver(NetRig::txq());
    rig.send_tx({packet(60, 1)});
    rig.run();
    CHECK(rig.notifier.used_signals(NetRig::txq()) == 1);
    if (event_idx) {
        driver.set_used_event(5);  // "interrupt me after the 6th"
    } else {
        driver.set_no_interrupt(true);
    }
    rig.send_tx({packet(60, 2)});
    rig.run();
    CHECK(rig.notifier.used_signals(NetRig::txq()) == 1);
    CHECK(rig.counter("used_notifications") == 1);
    CHECK(driver.used_entries().size() == 2);
}
