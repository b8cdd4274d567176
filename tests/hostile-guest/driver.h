#pragma once

// Just enough of a virtio driver to use each device correctly (so that the
// guest can prove keel still serves it after an attack) and to build the
// malformed rings the attacks need. Rings and buffers come from a DMA arena
// that is cleared before every attack.

#define VIRTIO_RING_NO_LEGACY  // its legacy vring_init() is not valid C++
#include <linux/virtio_ring.h>
#include <stdint.h>

#include "transport.h"

namespace hostile {

// --- DMA arena: [16 MiB, 48 MiB) of guest RAM ---
void arena_reset();
// Zeroed, `align`-aligned memory from the arena.
uint64_t arena_alloc(uint64_t size, uint64_t align = 16);
template <class T>
T* arena_new(uint64_t count = 1, uint64_t align = 16) {
    return reinterpret_cast<T*>(arena_alloc(sizeof(T) * count, align));
}

// One split virtqueue, the driver side.
struct Ring {
    uint16_t size = 0;
    vring_desc* desc = nullptr;
    vring_avail* avail = nullptr;
    vring_used* used = nullptr;
    uint16_t next_desc = 0;  // descriptors are handed out in order, never reused
    uint16_t avail_idx = 0;
    uint16_t last_used = 0;

    void allocate(uint16_t queue_size);
    // A descriptor with exactly these fields; returns its index.
    uint16_t add(uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0);
    // Puts `head` in the next avail slot and publishes it.
    void publish(uint16_t head);
};

enum class DeviceKind : uint8_t { Block, Net, Rng };

// A device found on one transport, with the queues the attacks use.
struct Device {
    Transport* transport = nullptr;
    DeviceKind kind = DeviceKind::Block;
    const char* kind_name = "";
    uint64_t offered = 0;
    Ring rings[3];
    uint16_t ring_count = 0;
    // The queue that takes requests: blk and rng 0, net TX (1).
    uint16_t request_queue = 0;

    // The features a well-behaved driver takes (always VERSION_1, plus
    // INDIRECT_DESC, MAC and CTRL_VQ where offered).
    [[nodiscard]] uint64_t normal_features() const;
};

// Resets the device and waits for status 0 (false if it never reads 0).
bool reset(Device& device);
// Status 0 -> ACKNOWLEDGE -> DRIVER -> features -> FEATURES_OK; false when the
// device refuses the features (FEATURES_OK does not stick).
bool negotiate(Device& device, uint64_t features);
// Allocates and programs the device's rings (size `queue_size`, clamped to
// the maximum), enables them; does not set DRIVER_OK.
void setup_rings(Device& device, uint16_t queue_size = 8);
// reset + negotiate(normal features) + setup_rings + DRIVER_OK. False when
// any step fails or the device reports NEEDS_RESET.
bool bring_up(Device& device);

// Uses the device as a correct driver would and checks the answers: blk reads
// sector 0 and writes and re-reads the scratch sector; rng reads random
// bytes; net exchanges ARP with the host. On a brought-up device.
bool prove_works(Device& device);
// Receive buffers the net device gave back unused (length 0) during
// prove_works() that were not prove_works()'s own: how keel refuses a bad
// receive buffer without stopping the device.
extern uint32_t g_refused_rx_buffers;
// Why the last bring_up() or prove_works() failed ("" when none did).
extern const char* g_failure;

// Waits until the used ring of queue `queue` advances (true) or the device
// sets NEEDS_RESET or `timeout_ms` passes (false).
bool wait_used(Device& device, uint16_t queue, uint32_t timeout_ms, uint32_t* len = nullptr);
// Waits for DEVICE_NEEDS_RESET.
bool wait_needs_reset(Device& device, uint32_t timeout_ms);
[[nodiscard]] bool needs_reset(Device& device);

// A virtio-blk request chain on queue 0, not yet published: `header_len`
// bytes of a virtio_blk_outhdr (type, sector), the data buffer with
// `data_flags` (plus NEXT), and a device-writable status byte preset to 0xFF.
struct BlockChain {
    uint16_t head;
    uint8_t* status;
};
BlockChain build_block_chain(Device& device, uint32_t type, uint64_t sector, uint32_t header_len, uint64_t data_addr,
                             uint32_t data_len, uint16_t data_flags);

// A blk request against the device's request queue, built correctly: the
// header, `data` (device-writable for reads), the status byte. Returns the
// status byte the device wrote, or 0xFF when the request was not answered.
uint8_t block_request(Device& device, uint32_t type, uint64_t sector, uint8_t* data, uint32_t length);

}  // namespace hostile
