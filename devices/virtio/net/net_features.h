#pragma once

#include <cstddef>
#include <cstdint>

#include "virtio/net/virtio_net_uapi.h"

namespace keel::virtio {

// The feature and offload rules of virtio-net (virtio 1.2 §5.1.3), kept apart
// from the device so they can be tested one by one.

constexpr uint64_t net_feature(unsigned bit) {
    return uint64_t{1} << bit;
}

// The GUEST_* bits: which offloaded frames the driver can receive. These are
// the only bits VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET may name (§5.1.6.5.6.1).
inline constexpr uint64_t kNetGuestOffloadFeatures =
    net_feature(VIRTIO_NET_F_GUEST_CSUM) | net_feature(VIRTIO_NET_F_GUEST_TSO4) | net_feature(VIRTIO_NET_F_GUEST_TSO6) |
    net_feature(VIRTIO_NET_F_GUEST_ECN) | net_feature(VIRTIO_NET_F_GUEST_UFO);

// Every feature bit the device offers for a backend that accepts
// `supported_offloads` (TUN_F_*) and has `queue_pairs` queue pairs:
//   - always VERSION_1, EVENT_IDX, INDIRECT_DESC, MAC, STATUS, MTU,
//     MRG_RXBUF, CTRL_VQ, CTRL_RX, CTRL_VLAN, CTRL_MAC_ADDR;
//   - MQ when queue_pairs > 1;
//   - CSUM, HOST_TSO4, HOST_TSO6, HOST_ECN when the backend takes TUN_F_CSUM
//     (any IFF_VNET_HDR TAP accepts partially checksummed and GSO frames
//     from user space); HOST_UFO when it also takes TUN_F_UFO, as QEMU does
//     (kernels that cannot offload UFO may also refuse UFO frames);
//   - GUEST_CSUM, GUEST_TSO4/TSO6/ECN/UFO when the backend accepts the
//     matching TUNSETOFFLOAD flag (tun_offloads_for below), each only with
//     the features §5.1.3.1 makes it depend on, and CTRL_GUEST_OFFLOADS
//     when any GUEST_* bit is offered.
[[nodiscard]] uint64_t net_device_features(unsigned supported_offloads, size_t queue_pairs);

// The TUNSETOFFLOAD flags for the GUEST_* bits in `features`, mapped as
// Linux's vhost/QEMU's tap do: nothing without GUEST_CSUM; then TSO4 -> TSO4,
// TSO6 -> TSO6, ECN -> TSO_ECN (only with TSO4 or TSO6), UFO -> UFO.
[[nodiscard]] unsigned tun_offloads_for(uint64_t features);

// Makes a header read from the backend fit what the driver accepts now
// (`tun_offloads`, from tun_offloads_for()): false when the frame must be
// dropped (a GSO type or a partial checksum the driver cannot take, e.g. a
// frame the backend queued before the driver turned offloads off). Without
// TUN_F_CSUM the flags become 0 (§5.1.6.4.1: "MUST set flags to zero").
// num_buffers is left alone.
[[nodiscard]] bool sanitize_rx_header(virtio_net_hdr_v1& header, unsigned tun_offloads);

}  // namespace keel::virtio
