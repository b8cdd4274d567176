#include "driver.h"

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>

#include "clock.h"
#include "console.h"
#include "hw.h"
#include "protocol.h"
#include "virtio/net/virtio_net_uapi.h"

namespace hostile {
namespace {

constexpr uint64_t kArenaStart = 16ull << 20;
constexpr uint64_t kArenaEnd = 48ull << 20;
uint64_t arena_next = kArenaStart;

// Generous: an answer normally takes milliseconds, but the emulated sandbox can stall a
// vCPU or keel's event loop for seconds, and waiting only costs time when a device fails.
constexpr uint32_t kWaitMs = 20000;
constexpr uint8_t kCanary = 0xA5;
constexpr uint32_t kCanaryBytes = 64;
constexpr uint32_t kNetRxBuffer = 2048;
constexpr uint32_t kNetHeader = sizeof(virtio_net_hdr_v1);

uint64_t bit(unsigned n) {
    return uint64_t{1} << n;
}

// Records why a correct use of a device failed, for the result line.
bool failed(const char* why) {
    g_failure = why;
    return false;
}

// A buffer followed by kCanaryBytes of kCanary: the device must not write past what it was given.
uint8_t* canaried_buffer(uint32_t length) {
    auto* buffer = arena_new<uint8_t>(length + kCanaryBytes);
    memset(buffer + length, kCanary, kCanaryBytes);
    return buffer;
}
bool canary_intact(const uint8_t* buffer, uint32_t length) {
    for (uint32_t i = 0; i < kCanaryBytes; ++i) {
        if (buffer[length + i] != kCanary) return false;
    }
    return true;
}

void write_hex8(uint8_t* to, uint32_t value) {
    for (int i = 7; i >= 0; --i) {
        to[i] = static_cast<uint8_t>("0123456789abcdef"[value & 0xF]);
        value >>= 4;
    }
}

bool sector_has_label(const uint8_t* data, uint32_t sector) {
    constexpr uint32_t magic_length = sizeof(keel::hostile::kDiskSectorMagic) - 1;
    uint8_t expected[magic_length + 8];
    memcpy(expected, keel::hostile::kDiskSectorMagic, magic_length);
    write_hex8(expected + magic_length, sector);
    return memcmp(data, expected, sizeof(expected)) == 0;
}

bool prove_block(Device& device) {
    uint8_t* data = canaried_buffer(512);
    if (block_request(device, VIRTIO_BLK_T_IN, 0, data, 512) != VIRTIO_BLK_S_OK) return failed("blk-read-sector-0");
    if (!sector_has_label(data, 0)) return failed("blk-sector-0-content");
    if (!canary_intact(data, 512)) return failed("blk-wrote-past-buffer");
    // Write the scratch sector with a pattern unique to this call, read it back.
    static uint32_t generation = 0;
    ++generation;
    uint8_t* pattern = arena_new<uint8_t>(512);
    for (uint32_t i = 0; i < 512; ++i) pattern[i] = static_cast<uint8_t>(i * 7 + generation);
    if (block_request(device, VIRTIO_BLK_T_OUT, keel::hostile::kScratchSector, pattern, 512) != VIRTIO_BLK_S_OK) {
        return failed("blk-write");
    }
    uint8_t* back = canaried_buffer(512);
    if (block_request(device, VIRTIO_BLK_T_IN, keel::hostile::kScratchSector, back, 512) != VIRTIO_BLK_S_OK) {
        return failed("blk-read-back");
    }
    if (memcmp(pattern, back, 512) != 0) return failed("blk-read-back-content");
    return canary_intact(back, 512) || failed("blk-wrote-past-buffer");
}

bool prove_rng(Device& device) {
    Ring& ring = device.rings[0];
    for (int attempt = 0; attempt < 3; ++attempt) {
        uint8_t* buffer = canaried_buffer(64);
        ring.publish(ring.add(gpa_of(buffer), 64, VRING_DESC_F_WRITE));
        device.transport->notify(0);
        uint32_t len = 0;
        if (!wait_used(device, 0, kWaitMs, &len))
            return failed(needs_reset(device) ? "rng-needs-reset" : "rng-no-answer");
        if (len > 64 || !canary_intact(buffer, 64)) return failed("rng-wrote-past-buffer");
        if (len == 0) continue;  // legal: no entropy yet, ask again
        uint8_t any = 0;
        for (uint32_t i = 0; i < len; ++i) any |= buffer[i];
        return len < 8 || any != 0 || failed("rng-all-zero");
    }
    return failed("rng-empty-answers");
}

void put_ip(uint8_t* to, const unsigned char (&ip)[4]) {
    for (int i = 0; i < 4; ++i) to[i] = ip[i];
}

// An ARP request for the host's address, after a zeroed virtio_net_hdr_v1.
uint32_t build_arp_request(uint8_t* packet, const uint8_t (&mac)[6]) {
    memset(packet, 0, kNetHeader);
    uint8_t* frame = packet + kNetHeader;
    memset(frame, 0xFF, 6);  // broadcast
    memcpy(frame + 6, mac, 6);
    frame[12] = 0x08, frame[13] = 0x06;                                   // ARP
    const uint8_t fixed[8] = {0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01};  // Ethernet/IPv4, request
    memcpy(frame + 14, fixed, 8);
    memcpy(frame + 22, mac, 6);
    put_ip(frame + 28, keel::hostile::kGuestIp);
    memset(frame + 32, 0, 6);
    put_ip(frame + 38, keel::hostile::kHostIp);
    return kNetHeader + 42;
}

bool is_arp_reply_from_host(const uint8_t* packet, uint32_t len) {
    if (len < kNetHeader + 42) return false;
    const uint8_t* frame = packet + kNetHeader;
    uint8_t host[4];
    put_ip(host, keel::hostile::kHostIp);
    return frame[12] == 0x08 && frame[13] == 0x06 && frame[20] == 0x00 && frame[21] == 0x02 &&
           memcmp(frame + 28, host, 4) == 0;
}

bool prove_net(Device& device) {
    uint8_t mac[6];
    for (uint32_t i = 0; i < 6; ++i) mac[i] = device.transport->config8(i);
    Ring& rx = device.rings[0];
    Ring& tx = device.rings[1];
    constexpr int kBuffers = 4;
    uint8_t* rx_buffers[kBuffers];
    uint16_t rx_heads[kBuffers];
    for (int i = 0; i < kBuffers; ++i) {
        rx_buffers[i] = canaried_buffer(kNetRxBuffer);
        rx_heads[i] = rx.add(gpa_of(rx_buffers[i]), kNetRxBuffer, VRING_DESC_F_WRITE);
        rx.publish(rx_heads[i]);
    }
    device.transport->notify(0);
    // Ask up to three times: the host may drop the first request while the
    // TAP's neighbour state settles.
    for (int attempt = 0; attempt < 3; ++attempt) {
        uint8_t* packet = arena_new<uint8_t>(128);
        const uint32_t length = build_arp_request(packet, mac);
        tx.publish(tx.add(gpa_of(packet), length, 0));
        device.transport->notify(1);
        if (!wait_used(device, 1, kWaitMs))
            return failed(needs_reset(device) ? "net-tx-needs-reset" : "net-tx-no-answer");
        const uint64_t deadline = now_us() + 2'000'000;
        while (now_us() < deadline) {
            if (needs_reset(device)) return failed("net-rx-needs-reset");
            memory_barrier();
            if (rx.used->idx == rx.last_used) {
                delay_us(1000);
                continue;
            }
            const vring_used_elem element = rx.used->ring[rx.last_used % rx.size];
            ++rx.last_used;
            int which = -1;
            for (int i = 0; i < kBuffers; ++i) {
                if (rx_heads[i] == element.id) which = i;
            }
            if (which < 0) {
                // A buffer an attack posted: the device may only give it back unused.
                if (element.len != 0) return failed("net-rx-wrote-foreign-buffer");
                ++g_refused_rx_buffers;
                continue;
            }
            uint8_t* buffer = rx_buffers[which];
            if (element.len > kNetRxBuffer || !canary_intact(buffer, kNetRxBuffer)) return failed("net-rx-overrun");
            if (is_arp_reply_from_host(buffer, element.len)) return true;
            // Something else from the host (IPv6 neighbour discovery): give the buffer back.
            rx.publish(rx_heads[which]);
            device.transport->notify(0);
        }
    }
    return failed("net-no-arp-reply");
}

}  // namespace

uint32_t g_refused_rx_buffers = 0;
const char* g_failure = "";

void arena_reset() {
    memset(at<uint8_t>(kArenaStart), 0, arena_next - kArenaStart);
    arena_next = kArenaStart;
}

uint64_t arena_alloc(uint64_t size, uint64_t align) {
    const uint64_t start = (arena_next + align - 1) & ~(align - 1);
    if (start + size > kArenaEnd) fatal("DMA arena exhausted", size);
    arena_next = start + size;
    memset(at<uint8_t>(start), 0, size);
    return start;
}

void Ring::allocate(uint16_t queue_size) {
    size = queue_size;
    desc = arena_new<vring_desc>(queue_size, 4096);
    avail = reinterpret_cast<vring_avail*>(arena_alloc(4096, 4096));
    used = reinterpret_cast<vring_used*>(arena_alloc(4096, 4096));
    next_desc = avail_idx = last_used = 0;
}

uint16_t Ring::add(uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    const uint16_t index = static_cast<uint16_t>(next_desc++ % size);
    desc[index].addr = addr;
    desc[index].len = len;
    desc[index].flags = flags;
    desc[index].next = next;
    return index;
}

void Ring::publish(uint16_t head) {
    avail->ring[avail_idx % size] = head;
    memory_barrier();
    avail->idx = ++avail_idx;
    memory_barrier();
}

uint64_t Device::normal_features() const {
    uint64_t wanted = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_INDIRECT_DESC);
    if (kind == DeviceKind::Net) wanted |= bit(VIRTIO_NET_F_MAC) | bit(VIRTIO_NET_F_CTRL_VQ);
    return wanted & offered;
}

bool needs_reset(Device& device) {
    return (device.transport->status() & VIRTIO_CONFIG_S_NEEDS_RESET) != 0;
}

bool reset(Device& device) {
    device.transport->write_status(0);
    for (int i = 0; i < 1000; ++i) {
        if (device.transport->status() == 0) return true;
        delay_us(100);
    }
    return false;
}

bool negotiate(Device& device, uint64_t features) {
    Transport& t = *device.transport;
    if (!reset(device)) return false;
    t.write_status(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    t.write_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    device.offered = t.device_features();
    t.write_driver_features(features);
    t.write_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    return (t.status() & VIRTIO_CONFIG_S_FEATURES_OK) != 0;
}

void setup_rings(Device& device, uint16_t queue_size) {
    Transport& t = *device.transport;
    for (uint16_t q = 0; q < device.ring_count; ++q) {
        t.select_queue(q);
        const uint16_t max = t.queue_max();
        const uint16_t size = max != 0 && max < queue_size ? max : queue_size;
        Ring& ring = device.rings[q];
        ring.allocate(size);
        t.write_queue_size(size);
        t.write_queue_rings(gpa_of(ring.desc), gpa_of(ring.avail), gpa_of(ring.used));
        t.write_queue_ready(1);
    }
}

bool bring_up(Device& device) {
    if (!negotiate(device, device.normal_features())) return failed("features-refused");
    setup_rings(device);
    device.transport->write_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
                                   VIRTIO_CONFIG_S_DRIVER_OK);
    const uint8_t status = device.transport->status();
    return ((status & VIRTIO_CONFIG_S_DRIVER_OK) != 0 && (status & VIRTIO_CONFIG_S_NEEDS_RESET) == 0) ||
           failed("driver-ok-refused");
}

bool wait_used(Device& device, uint16_t queue, uint32_t timeout_ms, uint32_t* len) {
    Ring& ring = device.rings[queue];
    const uint64_t deadline = now_us() + uint64_t{timeout_ms} * 1000;
    while (now_us() < deadline) {
        memory_barrier();
        if (ring.used->idx != ring.last_used) {
            if (len != nullptr) *len = ring.used->ring[ring.last_used % ring.size].len;
            ++ring.last_used;
            return true;
        }
        if (needs_reset(device)) return false;
        delay_us(200);
    }
    return false;
}

bool wait_needs_reset(Device& device, uint32_t timeout_ms) {
    const uint64_t deadline = now_us() + uint64_t{timeout_ms} * 1000;
    while (now_us() < deadline) {
        if (needs_reset(device)) return true;
        delay_us(500);
    }
    return false;
}

BlockChain build_block_chain(Device& device, uint32_t type, uint64_t sector, uint32_t header_len, uint64_t data_addr,
                             uint32_t data_len, uint16_t data_flags) {
    Ring& ring = device.rings[0];
    auto* header = arena_new<virtio_blk_outhdr>();
    header->type = type;
    header->sector = sector;
    auto* status = arena_new<uint8_t>();
    *status = 0xFF;
    // Built from the tail, so each descriptor names the one after it.
    const uint16_t status_desc = ring.add(gpa_of(status), 1, VRING_DESC_F_WRITE);
    const uint16_t data_desc =
        ring.add(data_addr, data_len, static_cast<uint16_t>(data_flags | VRING_DESC_F_NEXT), status_desc);
    return {ring.add(gpa_of(header), header_len, VRING_DESC_F_NEXT, data_desc), status};
}

uint8_t block_request(Device& device, uint32_t type, uint64_t sector, uint8_t* data, uint32_t length) {
    const uint16_t data_flags = type == VIRTIO_BLK_T_IN ? VRING_DESC_F_WRITE : 0;
    const BlockChain chain =
        build_block_chain(device, type, sector, sizeof(virtio_blk_outhdr), gpa_of(data), length, data_flags);
    device.rings[0].publish(chain.head);
    device.transport->notify(0);
    if (!wait_used(device, 0, kWaitMs)) return 0xFF;
    return *chain.status;
}

bool prove_works(Device& device) {
    switch (device.kind) {
        case DeviceKind::Block:
            return prove_block(device);
        case DeviceKind::Rng:
            return prove_rng(device);
        case DeviceKind::Net:
            return prove_net(device);
    }
    return false;
}

}  // namespace hostile
