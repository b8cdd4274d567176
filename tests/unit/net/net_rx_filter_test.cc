// virtio-net receive filter (virtio 1.2 §5.1.6.5.1-3): the rules on their
// own, then through the control queue and the receive path of a device.

#include "virtio/net/net_rx_filter.h"

#include <catch2/catch.hpp>

#include "net_test_support.h"

using namespace keel;
using namespace keel::test;
using virtio::MacAddress;
using virtio::NetRxFilter;

namespace {

constexpr MacAddress kOwn{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
constexpr MacAddress kOther{0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc};
constexpr MacAddress kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr MacAddress kAllNodes{0x33, 0x33, 0x00, 0x00, 0x00, 0x01};
constexpr MacAddress kOtherGroup{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb};

// An Ethernet frame to `destination`: untagged IPv4, or 802.1Q with `vid`.
std::vector<uint8_t> ethernet(const MacAddress& destination, std::optional<uint16_t> vid = std::nullopt) {
    std::vector<uint8_t> frame(destination.begin(), destination.end());
    frame.insert(frame.end(), kOther.begin(), kOther.end());
    if (vid) {
        frame.insert(frame.end(), {0x81, 0x00, static_cast<uint8_t>(0xa0 | (*vid >> 8)), static_cast<uint8_t>(*vid)});
    }
    frame.insert(frame.end(), {0x08, 0x00});
    frame.resize(frame.size() + 46, 0x5a);
    return frame;
}

bool accepts(const NetRxFilter& filter, const std::vector<uint8_t>& frame) {
    return filter.accepts(frame, kOwn);
}

NetRxFilter::Table table_of(std::initializer_list<MacAddress> macs) {
    NetRxFilter::Table table;
    for (const auto& mac : macs) table.entries.at(table.count++) = mac;
    return table;
}

std::vector<uint8_t> ctrl_mac_tables(std::initializer_list<MacAddress> unicast,
                                     std::initializer_list<MacAddress> multicast) {
    std::vector<uint8_t> out;
    for (const auto& list : {unicast, multicast}) {
        const auto count = static_cast<uint32_t>(list.size());
        const auto* p = reinterpret_cast<const uint8_t*>(&count);
        out.insert(out.end(), p, p + sizeof count);
        for (const auto& mac : list) out.insert(out.end(), mac.begin(), mac.end());
    }
    return out;
}

}  // namespace

TEST_CASE("The receive filter starts promiscuous", "[net][filter]") {
    const NetRxFilter filter;
    CHECK(accepts(filter, ethernet(kOther)));
    CHECK(accepts(filter, ethernet(kOwn, 7)));
    CHECK(accepts(filter, {0x01, 0x02}));  // promiscuous: not even looked at
}

TEST_CASE("Without promiscuous mode unicast passes for the device's MAC and the table", "[net][filter]") {
    NetRxFilter filter;
    filter.promisc = false;
    CHECK(accepts(filter, ethernet(kOwn)));
    CHECK_FALSE(accepts(filter, ethernet(kOther)));
    filter.unicast = table_of({kOther});
    CHECK(accepts(filter, ethernet(kOther)));
    filter.unicast = NetRxFilter::Table{};
    filter.alluni = true;
    CHECK(accepts(filter, ethernet(kOther)));
    filter.nouni = true;  // NOUNI wins over ALLUNI, and over the own MAC
    CHECK_FALSE(accepts(filter, ethernet(kOther)));
    CHECK_FALSE(accepts(filter, ethernet(kOwn)));
}

TEST_CASE("Group addresses: broadcast unless NOBCAST, multicast by table, ALLMULTI or NOMULTI", "[net][filter]") {
    NetRxFilter filter;
    filter.promisc = false;
    CHECK(accepts(filter, ethernet(kBroadcast)));
    CHECK_FALSE(accepts(filter, ethernet(kAllNodes)));
    filter.multicast = table_of({kAllNodes});
    CHECK(accepts(filter, ethernet(kAllNodes)));
    CHECK_FALSE(accepts(filter, ethernet(kOtherGroup)));
    filter.allmulti = true;
    CHECK(accepts(filter, ethernet(kOtherGroup)));
    filter.nomulti = true;
    CHECK_FALSE(accepts(filter, ethernet(kAllNodes)));
    CHECK(accepts(filter, ethernet(kBroadcast)));  // broadcast is not "multicast" here
    filter.nobcast = true;
    CHECK_FALSE(accepts(filter, ethernet(kBroadcast)));
}

TEST_CASE("A table longer than the filter holds accepts its whole class", "[net][filter]") {
    NetRxFilter filter;
    filter.promisc = false;
    filter.unicast.count = NetRxFilter::kMaxTableEntries + 1;
    CHECK(accepts(filter, ethernet(kOther)));
    CHECK_FALSE(accepts(filter, ethernet(kOtherGroup)));
    filter.multicast.count = NetRxFilter::kMaxTableEntries + 1;
    CHECK(accepts(filter, ethernet(kOtherGroup)));
}

TEST_CASE("With VLAN filtering tagged frames pass only for added ids", "[net][filter]") {
    NetRxFilter filter;
    filter.promisc = false;
    CHECK(accepts(filter, ethernet(kOwn, 100)));  // no CTRL_VLAN: tags are not filtered
    filter.set_vlan_filtering(true);
    CHECK(accepts(filter, ethernet(kOwn)));  // untagged frames always pass
    CHECK_FALSE(accepts(filter, ethernet(kOwn, 100)));
    filter.set_vlan(100, true);
    CHECK(accepts(filter, ethernet(kOwn, 100)));  // the priority bits do not matter
    CHECK_FALSE(accepts(filter, ethernet(kOther, 100)));
    filter.set_vlan(100, false);
    CHECK_FALSE(accepts(filter, ethernet(kOwn, 100)));
}

TEST_CASE("Runt frames never pass a non-promiscuous filter", "[net][filter]") {
    NetRxFilter filter;
    filter.promisc = false;
    CHECK_FALSE(accepts(filter, {}));
    auto frame = ethernet(kOwn);
    frame.resize(13);
    CHECK_FALSE(accepts(filter, frame));
    filter.set_vlan_filtering(true);
    filter.set_vlan(5, true);
    frame = ethernet(kOwn, 5);
    frame.resize(15);  // a VLAN EtherType without its tag
    CHECK_FALSE(accepts(filter, frame));
}

TEST_CASE("The device delivers only frames its driver's filter accepts", "[net][filter]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));  // with CTRL_RX and CTRL_VLAN
    // What Linux sends when the interface comes up: promiscuous off, an empty
    // unicast table and the all-nodes group.
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, {0}).ack == VIRTIO_NET_OK);
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, ctrl_mac_tables({}, {kAllNodes})).ack ==
          VIRTIO_NET_OK);
    CHECK(rig.device().rx_filter().multicast.contains(kAllNodes));

    const auto message = [](const MacAddress& destination, std::optional<uint16_t> vid = std::nullopt) {
        return concat(header_bytes(make_header()), ethernet(destination, vid));
    };
    rig.post_rx({{1526}, {1526}, {1526}, {1526}, {1526}});
    rig.tap_send(message(kOther));        // someone else's unicast: filtered
    rig.tap_send(message(kTestMac));      // ours
    rig.tap_send(message(kOtherGroup));   // a group the driver did not join: filtered
    rig.tap_send(message(kAllNodes));     // joined
    rig.tap_send(message(kTestMac, 42));  // a VLAN the driver did not add: filtered
    rig.tap_send(message(kBroadcast));
    rig.run();
    auto used = rig.driver(NetRig::rxq()).used_entries();
    REQUIRE(used.size() == 3);
    const auto destination_of = [&](const UsedEntry& e) {
        const auto bytes = rig.driver(NetRig::rxq()).written(static_cast<uint16_t>(e.id), e.len);
        MacAddress mac{};
        std::copy_n(bytes.begin() + static_cast<std::ptrdiff_t>(kHdr), mac.size(), mac.begin());
        return mac;
    };
    CHECK(destination_of(used[0]) == kTestMac);
    CHECK(destination_of(used[1]) == kAllNodes);
    CHECK(destination_of(used[2]) == kBroadcast);
    CHECK(rig.counter("rx_filtered") == 3);
    CHECK(rig.counter("rx_packets") == 3);
    CHECK(rig.counter("rx_dropped") == 0);

    // VLAN_ADD lets that VLAN in.
    const std::vector<uint8_t> vid42{42, 0};
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_ADD, vid42).ack == VIRTIO_NET_OK);
    rig.tap_send(message(kTestMac, 42));
    rig.run();
    used = rig.driver(NetRig::rxq()).used_entries();  // the new ones
    REQUIRE(used.size() == 1);
    CHECK(destination_of(used[0]) == kTestMac);

    // Back to promiscuous: everything passes.
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, {1}).ack == VIRTIO_NET_OK);
    rig.tap_send(message(kOther));
    rig.run();
    CHECK(rig.driver(NetRig::rxq()).used_entries().size() == 1);
    CHECK(rig.counter("rx_filtered") == 3);
}

TEST_CASE("CTRL_MAC_ADDR_SET moves the address the filter calls the device's own", "[net][filter]") {
    NetRig rig;
    REQUIRE(rig.activate(kBasicNet));  // with CTRL_MAC_ADDR
    CHECK(rig.ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, {0}).ack == VIRTIO_NET_OK);
    CHECK(
        rig.ctrl(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, std::vector<uint8_t>(kOther.begin(), kOther.end()))
            .ack == VIRTIO_NET_OK);
    rig.post_rx({{1526}, {1526}});
    rig.tap_send(concat(header_bytes(make_header()), ethernet(kTestMac)));
    rig.tap_send(concat(header_bytes(make_header()), ethernet(kOther)));
    rig.run();
    const auto used = rig.driver(NetRig::rxq()).used_entries();
    REQUIRE(used.size() == 1);
    CHECK(rig.counter("rx_filtered") == 1);
}
