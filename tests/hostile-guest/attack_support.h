#pragma once

// What the attacks share: building requests on a device's request queue,
// watching what the device does with them, and raw accesses. Every attack
// function takes a brought-up device and returns an Outcome (attacks.h).

#include <linux/virtio_config.h>
#include <stdint.h>

#include "attacks.h"
#include "driver.h"

namespace hostile {

// How long an attack waits for the device to react (see kWaitMs in driver.cc).
inline constexpr uint32_t kObserveMs = 10000;
inline constexpr uint64_t kBeyondRam = 0x3'0000'0000;  // 12 GiB: no RAM, no device
inline constexpr uint64_t kMmioHoleStart = 0xC000'0000;
inline constexpr uint8_t kDriverOkStatus =
    VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK;

inline uint64_t bit(unsigned n) {
    return uint64_t{1} << n;
}

// The queue that takes requests, and the flag a data buffer of this device
// carries (TX and blk writes are read by the device; rng and blk reads are
// written).
inline Ring& request_ring(Device& d) {
    return d.rings[d.request_queue];
}
inline uint16_t data_flags(const Device& d) {
    return d.kind == DeviceKind::Net ? 0 : VRING_DESC_F_WRITE;
}

// Publishes `head` on the request queue, notifies, and says what the device
// did within kObserveMs. `status` is the blk status byte of the request, if
// any. The used length of an answered request is left in g_last_used_len.
uint16_t observe(Device& d, uint16_t head, const uint8_t* status = nullptr);
extern uint32_t g_last_used_len;
// One request whose data buffer is (addr, len); everything else is correct.
uint16_t request_with_buffer(Device& d, uint64_t addr, uint32_t len, uint16_t extra_flags = 0);
// kIgnored when the device still serves a correct driver without a reset.
uint16_t ignored_if_still_works(Device& d);

uint64_t xorshift(uint64_t& state);
// One MMIO access of `width` bytes (1, 2, 4 or 8).
void poke(uint64_t address, unsigned width, uint64_t value, bool write);

// device_attacks.cc
uint16_t blk_sector_past_capacity(Device& d);
uint16_t blk_sector_overflow(Device& d);
uint16_t blk_partial_sector(Device& d);
uint16_t blk_unknown_type(Device& d);
uint16_t blk_short_header(Device& d);
uint16_t blk_no_status_byte(Device& d);
uint16_t net_tx_oversized_frame(Device& d);
uint16_t net_tx_header_only(Device& d);
uint16_t net_tx_short_header(Device& d);
uint16_t net_ctrl_unknown_class(Device& d);
uint16_t net_ctrl_unknown_command(Device& d);
uint16_t net_ctrl_no_ack_byte(Device& d);
uint16_t net_rx_buffer_outside_ram(Device& d);
uint16_t net_rx_buffer_readable(Device& d);
uint16_t rng_readable_request(Device& d);

// pokes.cc
uint16_t window_out_of_range(Device& d);
uint16_t msix_abuse(Device& d);

}  // namespace hostile
