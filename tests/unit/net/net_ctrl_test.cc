// virtio-net control queue (virtio 1.2 §5.1.6.5): every class keel handles,
// commands of features not negotiated, unknown and malformed commands.

#include <catch2/catch.hpp>

#include "net_test_support.h"

using namespace keel;
using namespace keel::test;

namespace {

template <typename T>
std::vector<uint8_t> bytes_of(const T& value) {
    std::vector<uint8_t> out(sizeof value);
    std::memcpy(out.data(), &value, sizeof value);
    return out;
}

// struct virtio_net_ctrl_mac with `entries` addresses (and optionally a
// different count in the header).
std::vector<uint8_t> mac_table(uint32_t entries, std::optional<uint32_t> claimed = std::nullopt) {
    auto out = bytes_of(claimed.value_or(entries));
    for (uint32_t i = 0; i < entries; ++i) {
        const std::array<uint8_t, 6> mac{0x33, 0x33, 0, 0, 0, static_cast<uint8_t>(i)};
        out.insert(out.end(), mac.begin(), mac.end());
    }
    return out;
}

}  // namespace

TEST_CASE("CTRL_RX commands set each receive mode", "[net][ctrl]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, {1}).ack == VIRTIO_NET_OK);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, {1}).ack == VIRTIO_NET_OK);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLUNI, {1}).ack == VIRTIO_NET_OK);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_NOMULTI, {1}).ack == VIRTIO_NET_OK);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_NOUNI, {1}).ack == VIRTIO_NET_OK);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_NOBCAST, {1}).ack == VIRTIO_NET_OK);
    auto filter = rig.device().rx_filter();
    CHECK((filter.promisc && filter.allmulti && filter.alluni && filter.nomulti && filter.nouni && filter.nobcast));
    const auto reply = rig.ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, {0});
    CHECK(reply.ack == VIRTIO_NET_OK);
    CHECK(reply.used.len == 1);
    CHECK_FALSE(rig.device().rx_filter().promisc);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_RX, 6, {1}).ack == VIRTIO_NET_ERR);  // unknown command
    CHECK(rig.counter("ctrl_commands") == 8);
    CHECK(rig.counter("errors") == 0);
    CHECK(rig.notifier.used_signals(rig.ctrlq()) >= 1);
}

TEST_CASE("CTRL_MAC TABLE_SET checks both tables against the payload", "[net][ctrl]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, concat(mac_table(2), mac_table(3))).ack ==
          VIRTIO_NET_OK);
    CHECK(rig.device().rx_filter().unicast.count == 2);
    CHECK(rig.device().rx_filter().multicast.count == 3);
    // Linux sends each table in its own descriptor.
    CHECK(rig.ctrl_raw({{VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET}, mac_table(0), mac_table(1)}, {1}).ack ==
          VIRTIO_NET_OK);
    CHECK(rig.device().rx_filter().unicast.count == 0);
    CHECK(rig.counter("errors") == 0);

    const std::vector<std::vector<uint8_t>> malformed{
        mac_table(2),                                     // no multicast table
        concat(mac_table(2, 3), mac_table(0)),            // claims more than it has
        concat(mac_table(1), mac_table(1, 0xffff'ffff)),  // absurd count
        concat(concat(mac_table(1), mac_table(1)), {0}),  // trailing byte
        {1, 0},                                           // short count
    };
    uint64_t errors = 0;
    for (const auto& payload : malformed) {
        CHECK(rig.ctrl(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, payload).ack == VIRTIO_NET_ERR);
        CHECK(rig.counter("errors") == ++errors);
    }
    CHECK(rig.device().rx_filter().unicast.count == 0);  // unchanged
    CHECK_FALSE(rig.notifier.needs_reset());
}

TEST_CASE("CTRL_MAC ADDR_SET changes the MAC the config space reports until reset", "[net][ctrl]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));
    const std::vector<uint8_t> mac{0x02, 0, 0, 0, 0, 0x42};
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, mac).ack == VIRTIO_NET_OK);
    std::array<uint8_t, 6> config{};
    rig.device().read_config(0, config);
    CHECK(std::equal(mac.begin(), mac.end(), config.begin()));
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, {1, 2, 3}).ack == VIRTIO_NET_ERR);
    CHECK(rig.counter("errors") == 1);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_MAC, 2, mac).ack == VIRTIO_NET_ERR);
    rig.reset();
    CHECK(rig.device().mac() == kTestMac);

    // Without CTRL_MAC_ADDR the command is refused.
    REQUIRE(rig.activate(kBasicNet & ~net_feature(VIRTIO_NET_F_CTRL_MAC_ADDR)));
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, mac).ack == VIRTIO_NET_ERR);
    CHECK(rig.device().mac() == kTestMac);
}

TEST_CASE("CTRL_VLAN ADD and DEL are acknowledged for valid ids", "[net][ctrl]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_ADD, bytes_of(uint16_t{100})).ack == VIRTIO_NET_OK);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_DEL, bytes_of(uint16_t{100})).ack == VIRTIO_NET_OK);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_ADD, bytes_of(uint16_t{4096})).ack == VIRTIO_NET_ERR);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_VLAN, 7, bytes_of(uint16_t{1})).ack == VIRTIO_NET_ERR);
    CHECK(rig.counter("errors") == 0);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_ADD, {1}).ack == VIRTIO_NET_ERR);
    CHECK(rig.counter("errors") == 1);
}

TEST_CASE("Commands of features the driver did not negotiate are refused", "[net][ctrl]") {
    NetRig rig(2);
    REQUIRE(rig.activate(kRingFeatures | net_feature(VIRTIO_NET_F_CTRL_VQ)));
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, {0}).ack == VIRTIO_NET_ERR);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, concat(mac_table(0), mac_table(0))).ack ==
          VIRTIO_NET_ERR);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_ADD, bytes_of(uint16_t{1})).ack == VIRTIO_NET_ERR);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, bytes_of(uint16_t{1})).ack == VIRTIO_NET_ERR);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET, bytes_of(uint64_t{0})).ack ==
          VIRTIO_NET_ERR);
    CHECK(rig.device().rx_filter().promisc);  // still the default
    CHECK(rig.counter("errors") == 0);
}

TEST_CASE("Unknown classes get VIRTIO_NET_ERR", "[net][ctrl]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_ANNOUNCE, VIRTIO_NET_CTRL_ANNOUNCE_ACK, {}).ack == VIRTIO_NET_ERR);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_NOTF_COAL, 0, std::vector<uint8_t>(8, 0)).ack == VIRTIO_NET_ERR);
    CHECK(rig.ctrl(0xff, 0xff, {}).ack == VIRTIO_NET_ERR);
    CHECK(rig.counter("errors") == 0);
    CHECK(rig.counter("ctrl_commands") == 3);
}

TEST_CASE("Malformed control commands are answered with what can be written", "[net][ctrl]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));
    SECTION("no writable ack byte: not run, used length 0") {
        const auto reply = rig.ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, {0}, 0);
        CHECK(reply.used.len == 0);
        CHECK(rig.device().rx_filter().promisc);
    }
    SECTION("one byte of header") {
        const auto reply = rig.ctrl_raw({{VIRTIO_NET_CTRL_RX}}, {1});
        CHECK(reply.used.len == 1);
        CHECK(reply.ack == VIRTIO_NET_ERR);
    }
    SECTION("no readable part at all") {
        const auto reply = rig.ctrl_raw({}, {4});
        CHECK(reply.used.len == 1);
        CHECK(reply.ack == VIRTIO_NET_ERR);
    }
    SECTION("payload too short or too long") {
        CHECK(rig.ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, {}).ack == VIRTIO_NET_ERR);
        CHECK(rig.counter("errors") == 1);
        CHECK(rig.ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, {0, 0}).ack == VIRTIO_NET_ERR);
        CHECK(rig.device().rx_filter().promisc);
    }
    CHECK(rig.counter("errors") >= 1);
    CHECK_FALSE(rig.notifier.needs_reset());
    // The queue still works.
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, {1}).ack == VIRTIO_NET_OK);
}

TEST_CASE("A control command split over descriptors, direct or indirect, works", "[net][ctrl]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));
    CHECK(rig.ctrl_raw({{VIRTIO_NET_CTRL_RX}, {VIRTIO_NET_CTRL_RX_ALLMULTI}, {}, {1}}, {1, 8}).ack == VIRTIO_NET_OK);
    CHECK(rig.device().rx_filter().allmulti);
    auto& driver = rig.driver(rig.ctrlq());
    const uint16_t head = driver.add_indirect_chain({{VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_NOBCAST, 1}}, {1});
    driver.publish();
    rig.kick(rig.ctrlq());
    rig.run();
    const auto used = driver.used_entries();
    REQUIRE(used.size() == 1);
    CHECK(used[0] == UsedEntry{head, 1});
    CHECK(driver.written(head, 1)[0] == VIRTIO_NET_OK);
    CHECK(rig.device().rx_filter().nobcast);
}

TEST_CASE("CTRL_GUEST_OFFLOADS_SET hands negotiated offloads to the backend", "[net][ctrl]") {
    NetRig rig;
    const uint64_t offloads = net_feature(VIRTIO_NET_F_GUEST_CSUM) | net_feature(VIRTIO_NET_F_GUEST_TSO4) |
                              net_feature(VIRTIO_NET_F_GUEST_TSO6);
    REQUIRE(rig.activate(kMergeable | offloads | net_feature(VIRTIO_NET_F_CTRL_GUEST_OFFLOADS)));
    CHECK(rig.backend->offload_calls == std::vector<unsigned>{TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6});

    // Offloads off (what Linux does for XDP): GSO frames are not delivered now.
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET, bytes_of(uint64_t{0})).ack ==
          VIRTIO_NET_OK);
    CHECK(rig.backend->offload_calls.back() == 0u);
    CHECK(rig.device().guest_offloads() == 0u);
    rig.post_rx({{70000}});
    rig.tap_send(packet(3000, 1, make_header(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4)));
    rig.run();
    CHECK(rig.counter("rx_dropped") == 1);

    const uint64_t csum_tso4 = net_feature(VIRTIO_NET_F_GUEST_CSUM) | net_feature(VIRTIO_NET_F_GUEST_TSO4);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET, bytes_of(csum_tso4)).ack ==
          VIRTIO_NET_OK);
    CHECK(rig.backend->offload_calls.back() == (TUN_F_CSUM | TUN_F_TSO4));
    // Not negotiated: refused, nothing changes.
    const size_t calls = rig.backend->offload_calls.size();
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET,
                   bytes_of(net_feature(VIRTIO_NET_F_GUEST_UFO)))
              .ack == VIRTIO_NET_ERR);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET,
                   bytes_of(net_feature(VIRTIO_NET_F_CSUM)))
              .ack == VIRTIO_NET_ERR);
    CHECK(rig.backend->offload_calls.size() == calls);
    // The backend refuses: so does the device.
    rig.backend->fail_set_offloads = true;
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET, bytes_of(uint64_t{0})).ack ==
          VIRTIO_NET_ERR);
    CHECK(rig.device().guest_offloads() == (TUN_F_CSUM | TUN_F_TSO4));
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_GUEST_OFFLOADS, 1, bytes_of(uint64_t{0})).ack == VIRTIO_NET_ERR);
}

TEST_CASE("A broken control queue stops the device", "[net][ctrl]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));
    auto& driver = rig.driver(rig.ctrlq());
    driver.write_descriptor(0, driver.data_start().value, 2, VRING_DESC_F_NEXT, 9999);
    driver.push_avail(0);
    driver.publish();
    rig.kick(rig.ctrlq());
    rig.run();
    CHECK(rig.notifier.needs_reset());
    CHECK(driver.used_entries().empty());
}
