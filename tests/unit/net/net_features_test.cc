// virtio-net feature bits, offload mapping, header checks, configuration
// space and construction errors (virtio 1.2 §5.1.3 - §5.1.4).

#include <linux/virtio_ids.h>

#include <catch2/catch.hpp>

#include "common/error.h"
#include "net_test_support.h"

using namespace keel;
using namespace keel::test;
using virtio::net_device_features;
using virtio::sanitize_rx_header;
using virtio::tun_offloads_for;

namespace {

constexpr uint64_t kAlways =
    net_feature(VIRTIO_F_VERSION_1) | net_feature(VIRTIO_RING_F_EVENT_IDX) | net_feature(VIRTIO_RING_F_INDIRECT_DESC) |
    net_feature(VIRTIO_NET_F_MAC) | net_feature(VIRTIO_NET_F_STATUS) | net_feature(VIRTIO_NET_F_MTU) |
    net_feature(VIRTIO_NET_F_MRG_RXBUF) | net_feature(VIRTIO_NET_F_CTRL_VQ) | net_feature(VIRTIO_NET_F_CTRL_RX) |
    net_feature(VIRTIO_NET_F_CTRL_VLAN) | net_feature(VIRTIO_NET_F_CTRL_MAC_ADDR);

bool has(uint64_t features, int bit) {
    return (features & net_feature(static_cast<unsigned>(bit))) != 0;
}

}  // namespace

TEST_CASE("virtio-net offers the base features and no offloads when the backend takes none", "[net][features]") {
    CHECK(net_device_features(0, 1) == kAlways);
    CHECK(net_device_features(0, 4) == (kAlways | net_feature(VIRTIO_NET_F_MQ)));
    // TSO without CSUM is no offload a TAP can do.
    CHECK(net_device_features(TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_UFO, 1) == kAlways);
}

TEST_CASE("virtio-net offers every offload a full TAP supports", "[net][features]") {
    const uint64_t f = net_device_features(kAllOffloads, 1);
    for (const int bit :
         {VIRTIO_NET_F_CSUM, VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6, VIRTIO_NET_F_HOST_ECN,
          VIRTIO_NET_F_HOST_UFO, VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6,
          VIRTIO_NET_F_GUEST_ECN, VIRTIO_NET_F_GUEST_UFO, VIRTIO_NET_F_CTRL_GUEST_OFFLOADS}) {
        INFO("bit " << bit);
        CHECK(has(f, bit));
    }
    CHECK_FALSE(has(f, VIRTIO_NET_F_MQ));
    CHECK_FALSE(has(f, VIRTIO_NET_F_GUEST_ANNOUNCE));
    CHECK_FALSE(has(f, VIRTIO_NET_F_CTRL_RX_EXTRA));
}

TEST_CASE("virtio-net offers only what a partial backend supports", "[net][features]") {
    const uint64_t csum_only = net_device_features(TUN_F_CSUM, 1);
    CHECK(has(csum_only, VIRTIO_NET_F_CSUM));
    CHECK(has(csum_only, VIRTIO_NET_F_HOST_TSO4));  // any vnet-hdr TAP takes GSO frames from us
    CHECK_FALSE(has(csum_only, VIRTIO_NET_F_HOST_UFO));
    CHECK(has(csum_only, VIRTIO_NET_F_GUEST_CSUM));
    CHECK_FALSE(has(csum_only, VIRTIO_NET_F_GUEST_TSO4));
    CHECK_FALSE(has(csum_only, VIRTIO_NET_F_GUEST_TSO6));
    CHECK_FALSE(has(csum_only, VIRTIO_NET_F_GUEST_ECN));
    CHECK_FALSE(has(csum_only, VIRTIO_NET_F_GUEST_UFO));

    // ECN alone has nothing to apply to.
    CHECK_FALSE(has(net_device_features(TUN_F_CSUM | TUN_F_TSO_ECN, 1), VIRTIO_NET_F_GUEST_ECN));
    CHECK(has(net_device_features(TUN_F_CSUM | TUN_F_TSO6 | TUN_F_TSO_ECN, 1), VIRTIO_NET_F_GUEST_ECN));
}

TEST_CASE("Every offered feature set respects the dependencies of virtio 1.2 §5.1.3.1", "[net][features]") {
    for (unsigned offloads = 0; offloads < 32; ++offloads) {
        for (const size_t pairs : {size_t{1}, size_t{3}}) {
            const uint64_t f = net_device_features(offloads, pairs);
            INFO("offloads " << offloads << " pairs " << pairs);
            const auto requires_bit = [f](int bit, int needed) { return !has(f, bit) || has(f, needed); };
            CHECK(requires_bit(VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_CSUM));
            CHECK(requires_bit(VIRTIO_NET_F_GUEST_TSO6, VIRTIO_NET_F_GUEST_CSUM));
            CHECK(requires_bit(VIRTIO_NET_F_GUEST_UFO, VIRTIO_NET_F_GUEST_CSUM));
            CHECK((!has(f, VIRTIO_NET_F_GUEST_ECN) || has(f, VIRTIO_NET_F_GUEST_TSO4) ||
                   has(f, VIRTIO_NET_F_GUEST_TSO6)));
            CHECK(requires_bit(VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_CSUM));
            CHECK(requires_bit(VIRTIO_NET_F_HOST_TSO6, VIRTIO_NET_F_CSUM));
            CHECK(requires_bit(VIRTIO_NET_F_HOST_UFO, VIRTIO_NET_F_CSUM));
            CHECK((!has(f, VIRTIO_NET_F_HOST_ECN) || has(f, VIRTIO_NET_F_HOST_TSO4) || has(f, VIRTIO_NET_F_HOST_TSO6)));
            for (const int bit : {VIRTIO_NET_F_CTRL_RX, VIRTIO_NET_F_CTRL_VLAN, VIRTIO_NET_F_MQ,
                                  VIRTIO_NET_F_CTRL_MAC_ADDR, VIRTIO_NET_F_CTRL_GUEST_OFFLOADS}) {
                CHECK(requires_bit(bit, VIRTIO_NET_F_CTRL_VQ));
            }
            CHECK(has(f, VIRTIO_NET_F_MQ) == (pairs > 1));
            // Every GUEST_* bit offered maps onto a flag the backend takes.
            CHECK((tun_offloads_for(f) & ~offloads) == 0);
        }
    }
}

TEST_CASE("GUEST_* features map onto TUNSETOFFLOAD flags as QEMU's tap does", "[net][features]") {
    const auto f = [](std::initializer_list<unsigned> bits) {
        uint64_t out = 0;
        for (const unsigned b : bits) out |= net_feature(b);
        return out;
    };
    CHECK(tun_offloads_for(0) == 0);
    CHECK(tun_offloads_for(f({VIRTIO_NET_F_GUEST_CSUM})) == TUN_F_CSUM);
    CHECK(tun_offloads_for(f({VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO4})) == (TUN_F_CSUM | TUN_F_TSO4));
    CHECK(tun_offloads_for(f({VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO6, VIRTIO_NET_F_GUEST_ECN})) ==
          (TUN_F_CSUM | TUN_F_TSO6 | TUN_F_TSO_ECN));
    CHECK(tun_offloads_for(f({VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_ECN})) == TUN_F_CSUM);
    CHECK(tun_offloads_for(f({VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_UFO})) == (TUN_F_CSUM | TUN_F_UFO));
    CHECK(tun_offloads_for(f({VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6,
                              VIRTIO_NET_F_GUEST_ECN, VIRTIO_NET_F_GUEST_UFO})) == kAllOffloads);
    // Nothing without GUEST_CSUM (a driver breaking §5.1.3.1).
    CHECK(tun_offloads_for(f({VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_UFO})) == 0);
    // HOST_* bits are not receive offloads.
    CHECK(tun_offloads_for(f({VIRTIO_NET_F_CSUM, VIRTIO_NET_F_HOST_TSO4})) == 0);
}

TEST_CASE("Receive headers are checked against the offloads the driver accepts", "[net][features]") {
    SECTION("without GUEST_CSUM flags become zero and offloaded frames are refused") {
        auto h = make_header(VIRTIO_NET_HDR_F_DATA_VALID);
        CHECK(sanitize_rx_header(h, 0));
        CHECK(h.flags == 0);
        h = make_header(VIRTIO_NET_HDR_F_NEEDS_CSUM);
        CHECK_FALSE(sanitize_rx_header(h, 0));
        h = make_header(0, VIRTIO_NET_HDR_GSO_TCPV4);
        CHECK_FALSE(sanitize_rx_header(h, 0));
    }
    SECTION("with offloads on, headers pass and unknown flags are cleared") {
        auto h = make_header(VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID | VIRTIO_NET_HDR_F_RSC_INFO,
                             VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN);
        h.hdr_len = 54;
        h.gso_size = 1448;
        h.csum_start = 34;
        h.csum_offset = 16;
        CHECK(sanitize_rx_header(h, kAllOffloads));
        CHECK(h.flags == (VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID));
        CHECK(h.gso_type == (VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN));
        CHECK(h.hdr_len == 54);
        CHECK(h.gso_size == 1448);
        CHECK(h.csum_start == 34);
        CHECK(h.csum_offset == 16);
    }
    SECTION("each GSO type needs its own flag") {
        const auto accepts = [](uint8_t gso, unsigned flags) {
            auto h = make_header(VIRTIO_NET_HDR_F_NEEDS_CSUM, gso);
            return sanitize_rx_header(h, flags);
        };
        CHECK(accepts(VIRTIO_NET_HDR_GSO_TCPV4, TUN_F_CSUM | TUN_F_TSO4));
        CHECK_FALSE(accepts(VIRTIO_NET_HDR_GSO_TCPV4, TUN_F_CSUM | TUN_F_TSO6));
        CHECK(accepts(VIRTIO_NET_HDR_GSO_UDP, TUN_F_CSUM | TUN_F_UFO));
        CHECK_FALSE(accepts(VIRTIO_NET_HDR_GSO_UDP, TUN_F_CSUM | TUN_F_TSO4));
        CHECK_FALSE(accepts(VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, TUN_F_CSUM | TUN_F_TSO4));
        CHECK_FALSE(accepts(5 /* GSO_UDP_L4 */, kAllOffloads));
        CHECK_FALSE(accepts(0x7f, kAllOffloads));
    }
}

TEST_CASE("virtio-net has 2N+1 queues of 256 entries and its features follow the backend", "[net][features]") {
    NetRig one(1, 0);
    CHECK(one.device().device_type() == VIRTIO_ID_NET);
    CHECK(one.device().name() == "net-test");
    CHECK(one.device().queue_max_sizes() == std::vector<uint16_t>(3, 256));
    CHECK(one.device().device_features() == kAlways);

    NetRig four(4, TUN_F_CSUM | TUN_F_TSO4);
    CHECK(four.device().queue_max_sizes() == std::vector<uint16_t>(9, 256));
    CHECK(four.device().device_features() == net_device_features(TUN_F_CSUM | TUN_F_TSO4, 4));
    CHECK(four.device().queue_pairs() == 4);
}

TEST_CASE("virtio-net config space holds mac, status, max_virtqueue_pairs and mtu", "[net][config]") {
    NetRig rig(3, kAllOffloads, 256, test_config(9000));
    virtio_net_config config{};
    rig.device().read_config(0, std::span(reinterpret_cast<uint8_t*>(&config), sizeof config));
    CHECK(std::equal(kTestMac.begin(), kTestMac.end(), config.mac));
    CHECK(config.status == VIRTIO_NET_S_LINK_UP);
    CHECK(config.max_virtqueue_pairs == 3);
    CHECK(config.mtu == 9000);
    CHECK(config.speed == 0);

    SECTION("partial reads at any offset, zeros past the end") {
        std::array<uint8_t, 4> window{0xff, 0xff, 0xff, 0xff};
        rig.device().read_config(4, window);  // mac[4], mac[5], status
        CHECK(window == std::array<uint8_t, 4>{0x34, 0x56, VIRTIO_NET_S_LINK_UP, 0});
        rig.device().read_config(10, std::span(window).first(2));  // mtu
        CHECK(window[0] == (9000 & 0xff));
        CHECK(window[1] == (9000 >> 8));
        std::fill(window.begin(), window.end(), uint8_t{0xff});
        rig.device().read_config(4096, window);
        CHECK(window == std::array<uint8_t, 4>{});
        rig.device().read_config(sizeof(virtio_net_config) - 1, window);
        CHECK(window == std::array<uint8_t, 4>{});
    }
    SECTION("driver writes are ignored") {
        const std::array<uint8_t, 6> other{2, 2, 2, 2, 2, 2};
        rig.device().write_config(0, other);
        rig.device().write_config(8, other);
        CHECK(rig.device().mac() == kTestMac);
        virtio_net_config again{};
        rig.device().read_config(0, std::span(reinterpret_cast<uint8_t*>(&again), sizeof again));
        CHECK(std::memcmp(&again, &config, sizeof config) == 0);
    }
}

TEST_CASE("virtio-net refuses configurations a guest cannot use", "[net][config]") {
    const auto make = [](size_t pairs, virtio::NetDeviceConfig config) {
        auto state = make_backend_state(pairs);
        return std::make_unique<virtio::VirtioNet>(std::move(config), std::make_unique<SocketpairBackend>(state));
    };
    CHECK_THROWS_AS(make(0, test_config()), Error);
    CHECK_THROWS_WITH(make(virtio::VirtioNet::kMaxQueuePairs + 1, test_config()), Catch::Contains("queue pairs"));
    auto multicast = test_config();
    multicast.mac[0] = 0x01;
    CHECK_THROWS_WITH(make(1, multicast), Catch::Contains("01:54:00:12:34:56") && Catch::Contains("unicast"));
    auto zero = test_config();
    zero.mac = {};
    CHECK_THROWS_AS(make(1, zero), Error);
    CHECK_THROWS_WITH(make(1, test_config(67)), Catch::Contains("MTU 67"));
    CHECK_THROWS_AS(std::make_unique<virtio::VirtioNet>(test_config(), nullptr), Error);
    CHECK_NOTHROW(make(virtio::VirtioNet::kMaxQueuePairs, test_config(68)));
}
