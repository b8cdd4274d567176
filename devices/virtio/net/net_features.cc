#include "virtio/net/net_features.h"

#include <linux/if_tun.h>
#include <linux/virtio_config.h>
#ifndef VIRTIO_RING_NO_LEGACY
#define VIRTIO_RING_NO_LEGACY  // its legacy vring_init() is not valid C++
#endif
#include <linux/virtio_ring.h>

namespace keel::virtio {

uint64_t net_device_features(unsigned supported_offloads, size_t queue_pairs) {
    uint64_t features = net_feature(VIRTIO_F_VERSION_1) | net_feature(VIRTIO_RING_F_EVENT_IDX) |
                        net_feature(VIRTIO_RING_F_INDIRECT_DESC) | net_feature(VIRTIO_NET_F_MAC) |
                        net_feature(VIRTIO_NET_F_STATUS) | net_feature(VIRTIO_NET_F_MTU) |
                        net_feature(VIRTIO_NET_F_MRG_RXBUF) | net_feature(VIRTIO_NET_F_CTRL_VQ) |
                        net_feature(VIRTIO_NET_F_CTRL_RX) | net_feature(VIRTIO_NET_F_CTRL_VLAN) |
                        net_feature(VIRTIO_NET_F_CTRL_MAC_ADDR);
    if (queue_pairs > 1) features |= net_feature(VIRTIO_NET_F_MQ);
    if ((supported_offloads & TUN_F_CSUM) == 0) return features;

    // §5.1.3.1: HOST_TSO4/TSO6/UFO need CSUM, HOST_ECN needs TSO4 or TSO6.
    features |= net_feature(VIRTIO_NET_F_CSUM) | net_feature(VIRTIO_NET_F_HOST_TSO4) |
                net_feature(VIRTIO_NET_F_HOST_TSO6) | net_feature(VIRTIO_NET_F_HOST_ECN);
    if ((supported_offloads & TUN_F_UFO) != 0) features |= net_feature(VIRTIO_NET_F_HOST_UFO);

    // GUEST_TSO4/TSO6/UFO need GUEST_CSUM, GUEST_ECN needs TSO4 or TSO6.
    features |= net_feature(VIRTIO_NET_F_GUEST_CSUM) | net_feature(VIRTIO_NET_F_CTRL_GUEST_OFFLOADS);
    const bool tso4 = (supported_offloads & TUN_F_TSO4) != 0;
    const bool tso6 = (supported_offloads & TUN_F_TSO6) != 0;
    if (tso4) features |= net_feature(VIRTIO_NET_F_GUEST_TSO4);
    if (tso6) features |= net_feature(VIRTIO_NET_F_GUEST_TSO6);
    if ((tso4 || tso6) && (supported_offloads & TUN_F_TSO_ECN) != 0) features |= net_feature(VIRTIO_NET_F_GUEST_ECN);
    if ((supported_offloads & TUN_F_UFO) != 0) features |= net_feature(VIRTIO_NET_F_GUEST_UFO);
    return features;
}

unsigned tun_offloads_for(uint64_t features) {
    const auto has = [features](unsigned bit) { return (features & net_feature(bit)) != 0; };
    if (!has(VIRTIO_NET_F_GUEST_CSUM)) return 0;
    unsigned flags = TUN_F_CSUM;
    if (has(VIRTIO_NET_F_GUEST_TSO4)) flags |= TUN_F_TSO4;
    if (has(VIRTIO_NET_F_GUEST_TSO6)) flags |= TUN_F_TSO6;
    if (has(VIRTIO_NET_F_GUEST_ECN) && (flags & (TUN_F_TSO4 | TUN_F_TSO6)) != 0) flags |= TUN_F_TSO_ECN;
    if (has(VIRTIO_NET_F_GUEST_UFO)) flags |= TUN_F_UFO;
    return flags;
}

bool sanitize_rx_header(virtio_net_hdr_v1& header, unsigned tun_offloads) {
    const bool csum = (tun_offloads & TUN_F_CSUM) != 0;
    if ((header.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) != 0 && !csum) return false;
    if ((header.gso_type & VIRTIO_NET_HDR_GSO_ECN) != 0 && (tun_offloads & TUN_F_TSO_ECN) == 0) return false;
    switch (header.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
        case VIRTIO_NET_HDR_GSO_NONE:
            break;
        case VIRTIO_NET_HDR_GSO_TCPV4:
            if ((tun_offloads & TUN_F_TSO4) == 0) return false;
            break;
        case VIRTIO_NET_HDR_GSO_TCPV6:
            if ((tun_offloads & TUN_F_TSO6) == 0) return false;
            break;
        case VIRTIO_NET_HDR_GSO_UDP:
            if ((tun_offloads & TUN_F_UFO) == 0) return false;
            break;
        default:
            return false;  // USO and whatever comes next were never negotiated
    }
    // RSC_INFO belongs to VIRTIO_NET_F_RSC_EXT, which keel does not offer.
    header.flags =
        csum ? static_cast<uint8_t>(header.flags & (VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID))
             : uint8_t{0};
    return true;
}

}  // namespace keel::virtio
