// Attacks on what each device type reads from its requests: virtio-blk
// headers and status bytes, virtio-net frames, control commands and receive
// buffers, virtio-rng buffers.

#include <linux/virtio_blk.h>

#include "attack_support.h"
#include "clock.h"
#include "hw.h"
#include "virtio/net/virtio_net_uapi.h"

namespace hostile {

// --- virtio-blk requests ---

static uint16_t blk_request(Device& d, uint32_t type, uint64_t sector, uint32_t header_len, uint32_t data_len) {
    const BlockChain chain =
        build_block_chain(d, type, sector, header_len, arena_alloc(data_len + 1), data_len, VRING_DESC_F_WRITE);
    return observe(d, chain.head, chain.status);
}

uint16_t blk_sector_past_capacity(Device& d) {
    return blk_request(d, VIRTIO_BLK_T_IN, 2048, 16, 512);
}
uint16_t blk_sector_overflow(Device& d) {
    return blk_request(d, VIRTIO_BLK_T_IN, ~uint64_t{0}, 16, 1024);
}
uint16_t blk_partial_sector(Device& d) {
    return blk_request(d, VIRTIO_BLK_T_IN, 0, 16, 100);
}
uint16_t blk_unknown_type(Device& d) {
    return blk_request(d, 0x55, 0, 16, 512);
}
uint16_t blk_short_header(Device& d) {
    return blk_request(d, VIRTIO_BLK_T_IN, 0, 8, 512);
}

uint16_t blk_no_status_byte(Device& d) {
    Ring& ring = request_ring(d);
    auto* header = arena_new<virtio_blk_outhdr>();
    header->type = VIRTIO_BLK_T_IN;
    const uint16_t outcome = observe(d, ring.add(gpa_of(header), sizeof(*header), 0));
    // With nowhere to write a status, giving the request back with nothing
    // written is the device's way of saying it failed.
    return outcome == kServed && g_last_used_len == 0 ? uint16_t{kError} : outcome;
}

// --- virtio-net ---

uint16_t net_tx_oversized_frame(Device& d) {
    Ring& ring = request_ring(d);
    // 70 KiB in 7 descriptors: above any frame the TAP takes.
    uint16_t next = ring.add(arena_alloc(10240), 10240, 0);
    for (int i = 0; i < 6; ++i) next = ring.add(arena_alloc(10240), 10240, VRING_DESC_F_NEXT, next);
    return observe(d, next);
}

uint16_t net_tx_header_only(Device& d) {
    return request_with_buffer(d, arena_alloc(sizeof(virtio_net_hdr_v1)), sizeof(virtio_net_hdr_v1));
}
uint16_t net_tx_short_header(Device& d) {
    return request_with_buffer(d, arena_alloc(16), 4);
}

// A control command with class and command `cls`/`cmd`; the ack byte tells.
static uint16_t net_ctrl(Device& d, uint8_t cls, uint8_t cmd, bool with_ack) {
    if (d.ring_count < 3) return kBroken;
    Ring& ring = d.rings[2];
    auto* command = arena_new<uint8_t>(8);
    command[0] = cls;
    command[1] = cmd;
    auto* ack = arena_new<uint8_t>();
    *ack = 0xEE;
    uint16_t head;
    if (with_ack) {
        const uint16_t ack_desc = ring.add(gpa_of(ack), 1, VRING_DESC_F_WRITE);
        head = ring.add(gpa_of(command), 8, VRING_DESC_F_NEXT, ack_desc);
    } else {
        head = ring.add(gpa_of(command), 8, 0);
    }
    ring.publish(head);
    d.transport->notify(2);
    uint32_t len = 0;
    if (!wait_used(d, 2, kObserveMs, &len)) return needs_reset(d) ? kNeedsReset : kSilent;
    if (!with_ack) return len == 0 ? kError : kBroken;  // nothing could be written; nothing was
    return *ack == VIRTIO_NET_ERR ? kError : kServed;
}
uint16_t net_ctrl_unknown_class(Device& d) {
    return net_ctrl(d, 0x77, 0x01, true);
}
uint16_t net_ctrl_unknown_command(Device& d) {
    return net_ctrl(d, VIRTIO_NET_CTRL_RX, 0x99, true);
}
uint16_t net_ctrl_no_ack_byte(Device& d) {
    return net_ctrl(d, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, false);
}

// A bad receive buffer is only taken when a frame arrives: post it, then ask
// the host something it answers (ARP), through a correct TX.
static uint16_t net_bad_rx_buffer(Device& d, uint64_t addr, uint16_t flags) {
    Ring& rx = d.rings[0];
    rx.publish(rx.add(addr, 2048, flags));
    d.transport->notify(0);
    // prove_works() sends ARP requests; it fails when the device resets, and
    // counts the bad buffer if the device hands it back unused instead.
    g_refused_rx_buffers = 0;
    const bool works = prove_works(d);
    if (wait_needs_reset(d, kObserveMs)) return kNeedsReset;
    return works && g_refused_rx_buffers == 1 ? kError : kSilent;
}
uint16_t net_rx_buffer_outside_ram(Device& d) {
    return net_bad_rx_buffer(d, kBeyondRam, VRING_DESC_F_WRITE);
}
uint16_t net_rx_buffer_readable(Device& d) {
    return net_bad_rx_buffer(d, arena_alloc(2048), 0);
}

// --- virtio-rng ---

uint16_t rng_readable_request(Device& d) {
    Ring& ring = request_ring(d);
    return observe(d, ring.add(arena_alloc(64), 64, 0));
}

}  // namespace hostile
