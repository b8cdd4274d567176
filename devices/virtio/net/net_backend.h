#pragma once

#include <cstddef>

namespace keel::virtio {

// Where a virtio-net device's frames go: one nonblocking fd per queue pair
// that reads/writes one whole frame per call, each prefixed by a 12-byte
// struct virtio_net_hdr_v1 (TUNSETVNETHDRSZ 12; on reads the TAP leaves
// num_buffers 0). A TAP opened with IFF_VNET_HDR behaves so; tests use
// socketpair(AF_UNIX, SOCK_SEQPACKET).
//
// The device calls these from a vCPU thread (activate/reset) and from the
// event-loop thread (control commands), never at the same time.
class NetBackend {
public:
    virtual ~NetBackend() = default;
    [[nodiscard]] virtual size_t queue_pairs() const = 0;  // >= 1
    [[nodiscard]] virtual int queue_fd(size_t pair) const = 0;
    // TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6|TUN_F_TSO_ECN|TUN_F_UFO (linux/if_tun.h)
    // that this backend accepts.
    [[nodiscard]] virtual unsigned supported_offloads() const = 0;
    // TUNSETOFFLOAD: which offloaded frames the backend may hand to the
    // guest. False on failure.
    [[nodiscard]] virtual bool set_offloads(unsigned tun_flags) = 0;
    // Whether the host steers frames to queue `pair` (> 0) at all: a TAP
    // spreads its traffic over every attached queue, and frames on the queue
    // of a pair the driver has not enabled would wait there unread. The
    // device sends the frames of a detached pair through pair 0. False on
    // failure; the queue then stays as it was.
    [[nodiscard]] virtual bool set_queue_attached(size_t pair, bool attached) = 0;
};

}  // namespace keel::virtio
