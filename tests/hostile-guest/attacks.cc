// The attacks every device type shares (on its request queue: descriptors,
// indices, buffer placement, indirect tables, queue setup, register writes
// after DRIVER_OK, feature negotiation, notifications) and the table of all
// attacks.

#include "attacks.h"

#include <linux/virtio_blk.h>

#include "attack_support.h"
#include "clock.h"
#include "hw.h"

namespace hostile {

uint64_t g_ram_top = 0;
bool g_ram_reaches_hole = false;
uint32_t g_last_used_len = 0;

// Publishes `head` on the request queue, notifies, and says what the device
// did within kObserveMs. `status` is the blk status byte of the request, if any.
uint16_t observe(Device& d, uint16_t head, const uint8_t* status) {
    Ring& ring = request_ring(d);
    ring.publish(head);
    d.transport->notify(d.request_queue);
    const uint64_t deadline = now_us() + uint64_t{kObserveMs} * 1000;
    while (now_us() < deadline) {
        if (needs_reset(d)) return kNeedsReset;
        memory_barrier();
        if (ring.used->idx != ring.last_used) {
            g_last_used_len = ring.used->ring[ring.last_used % ring.size].len;
            ++ring.last_used;
            if (status != nullptr && *status != VIRTIO_BLK_S_OK) return kError;
            return kServed;
        }
        delay_us(300);
    }
    return kSilent;
}

// One request whose data buffer is (addr, len); everything else is correct.
uint16_t request_with_buffer(Device& d, uint64_t addr, uint32_t len, uint16_t extra_flags) {
    Ring& ring = request_ring(d);
    if (d.kind != DeviceKind::Block) {
        return observe(d, ring.add(addr, len, static_cast<uint16_t>(data_flags(d) | extra_flags)));
    }
    const BlockChain chain = build_block_chain(d, VIRTIO_BLK_T_IN, 0, sizeof(virtio_blk_outhdr), addr, len,
                                               static_cast<uint16_t>(VRING_DESC_F_WRITE | extra_flags));
    return observe(d, chain.head, chain.status);
}

uint16_t ignored_if_still_works(Device& d) {
    return prove_works(d) ? kIgnored : kBroken;
}

uint64_t xorshift(uint64_t& state) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

void poke(uint64_t address, unsigned width, uint64_t value, bool write) {
    switch (width) {
        case 1:
            write ? mmio_write<uint8_t>(address, static_cast<uint8_t>(value)) : (void)mmio_read<uint8_t>(address);
            break;
        case 2:
            write ? mmio_write<uint16_t>(address, static_cast<uint16_t>(value)) : (void)mmio_read<uint16_t>(address);
            break;
        case 4:
            write ? mmio_write<uint32_t>(address, static_cast<uint32_t>(value)) : (void)mmio_read<uint32_t>(address);
            break;
        default:
            write ? mmio_write<uint64_t>(address, value) : (void)mmio_read<uint64_t>(address);
            break;
    }
}

namespace {

// --- Descriptor and ring-index attacks ---

uint16_t descriptor_loop(Device& d) {
    Ring& ring = request_ring(d);
    const uint64_t buffer = arena_alloc(64);
    const auto first = static_cast<uint16_t>(ring.next_desc % ring.size);
    const auto second = static_cast<uint16_t>((first + 1) % ring.size);
    ring.add(buffer, 64, static_cast<uint16_t>(data_flags(d) | VRING_DESC_F_NEXT), second);
    ring.add(buffer, 64, static_cast<uint16_t>(data_flags(d) | VRING_DESC_F_NEXT), first);
    return observe(d, first);
}

uint16_t descriptor_self_loop(Device& d) {
    Ring& ring = request_ring(d);
    const auto self = static_cast<uint16_t>(ring.next_desc % ring.size);
    ring.add(arena_alloc(64), 64, static_cast<uint16_t>(data_flags(d) | VRING_DESC_F_NEXT), self);
    return observe(d, self);
}

uint16_t head_index_past_size(Device& d) {
    return observe(d, request_ring(d).size);
}
uint16_t head_index_max(Device& d) {
    return observe(d, 0xFFFF);
}

uint16_t next_index_past_size(Device& d) {
    Ring& ring = request_ring(d);
    return observe(d, ring.add(arena_alloc(64), 64, static_cast<uint16_t>(data_flags(d) | VRING_DESC_F_NEXT),
                               static_cast<uint16_t>(ring.size + 3)));
}

uint16_t avail_index_jump(Device& d) {
    Ring& ring = request_ring(d);
    ring.add(arena_alloc(64), 64, data_flags(d));
    ring.avail_idx = static_cast<uint16_t>(ring.avail_idx + ring.size);  // publish() adds one more
    return observe(d, 0);
}

uint16_t unknown_descriptor_flags(Device& d) {
    return request_with_buffer(d, arena_alloc(64), 64, 0x80);
}

uint16_t writable_before_readable(Device& d) {
    Ring& ring = request_ring(d);
    const auto first = static_cast<uint16_t>(ring.next_desc % ring.size);
    ring.add(arena_alloc(64), 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
             static_cast<uint16_t>((first + 1) % ring.size));
    ring.add(arena_alloc(64), 64, 0);
    return observe(d, first);
}

// Two readable buffers of 2 GiB each: more than a used length can count.
uint16_t chain_above_4gib(Device& d) {
    Ring& ring = request_ring(d);
    const auto first = static_cast<uint16_t>(ring.next_desc % ring.size);
    const uint16_t flags = static_cast<uint16_t>(data_flags(d) | VRING_DESC_F_NEXT);
    ring.add(0x10'0000, 0x8000'0000, flags, static_cast<uint16_t>((first + 1) % ring.size));
    ring.add(0x10'0000, 0x8000'0000, data_flags(d));
    return observe(d, first);
}

// --- Buffers in the wrong place ---

uint16_t buffer_outside_ram(Device& d) {
    return request_with_buffer(d, kBeyondRam, 512);
}
uint16_t buffer_straddling_ram_end(Device& d) {
    return request_with_buffer(d, g_ram_top - 16, 512);
}
uint16_t buffer_straddling_mmio_hole(Device& d) {
    return request_with_buffer(d, kMmioHoleStart - 16, 512);
}
uint16_t buffer_in_device_window(Device& d) {
    return request_with_buffer(d, d.transport->window_base(), 512);
}
uint16_t buffer_address_wraps(Device& d) {
    return request_with_buffer(d, ~uint64_t{0} - 15, 512);
}
uint16_t length_4gib(Device& d) {
    return request_with_buffer(d, 0x10'0000, 0xFFFF'FFFF);
}
uint16_t zero_length(Device& d) {
    return request_with_buffer(d, arena_alloc(64), 0);
}

// --- Indirect descriptors ---

uint16_t indirect(Device& d, uint64_t table, uint32_t length, uint16_t extra_flags = 0) {
    Ring& ring = request_ring(d);
    return observe(d, ring.add(table, length, static_cast<uint16_t>(VRING_DESC_F_INDIRECT | extra_flags), 1));
}

uint16_t indirect_in_indirect(Device& d) {
    auto* inner = arena_new<vring_desc>(1);
    inner[0] = vring_desc{arena_alloc(64), 64, data_flags(d), 0};
    auto* outer = arena_new<vring_desc>(1);
    outer[0] = vring_desc{gpa_of(inner), sizeof(vring_desc), VRING_DESC_F_INDIRECT, 0};
    return indirect(d, gpa_of(outer), sizeof(vring_desc));
}

uint16_t indirect_table_oversized(Device& d) {
    constexpr uint32_t entries = 4096;
    auto* table = arena_new<vring_desc>(entries);
    for (uint32_t i = 0; i < entries; ++i) {
        table[i] = vring_desc{arena_alloc(0, 16), 16, static_cast<uint16_t>(data_flags(d) | VRING_DESC_F_NEXT),
                              static_cast<uint16_t>(i + 1)};
    }
    table[entries - 1].flags = data_flags(d);
    return indirect(d, gpa_of(table), entries * sizeof(vring_desc));
}

uint16_t indirect_table_bad_length(Device& d) {
    auto* table = arena_new<vring_desc>(2);
    table[0] = vring_desc{arena_alloc(64), 64, data_flags(d), 0};
    return indirect(d, gpa_of(table), 24);
}

uint16_t indirect_table_empty(Device& d) {
    return indirect(d, arena_alloc(64), 0);
}
uint16_t indirect_table_outside_ram(Device& d) {
    return indirect(d, kBeyondRam, 64);
}

uint16_t indirect_with_next(Device& d) {
    auto* table = arena_new<vring_desc>(1);
    table[0] = vring_desc{arena_alloc(64), 64, data_flags(d), 0};
    return indirect(d, gpa_of(table), sizeof(vring_desc), VRING_DESC_F_NEXT);
}

uint16_t indirect_not_negotiated(Device& d) {
    if (!negotiate(d, d.normal_features() & ~bit(VIRTIO_RING_F_INDIRECT_DESC))) return kBroken;
    setup_rings(d);
    d.transport->write_status(kDriverOkStatus);
    auto* table = arena_new<vring_desc>(1);
    table[0] = vring_desc{arena_alloc(64), 64, data_flags(d), 0};
    return indirect(d, gpa_of(table), sizeof(vring_desc));
}

// --- Queue setup the device must refuse at DRIVER_OK ---

// Negotiates, sets every ring up, lets `tweak` spoil the request queue's
// configuration (the queue is selected), then sets DRIVER_OK.
template <class Tweak>
uint16_t bad_queue_setup(Device& d, Tweak tweak) {
    if (!negotiate(d, d.normal_features())) return kBroken;
    setup_rings(d);
    d.transport->select_queue(d.request_queue);
    tweak(d, request_ring(d));
    d.transport->write_status(kDriverOkStatus);
    if (wait_needs_reset(d, kObserveMs)) return kNeedsReset;
    return (d.transport->status() & VIRTIO_CONFIG_S_DRIVER_OK) != 0 ? kSilent : kRefused;
}

// The rings must be programmed while the queue is not ready.
void reprogram(Device& d, uint64_t desc, uint64_t avail, uint64_t used) {
    d.transport->write_queue_ready(0);
    d.transport->write_queue_rings(desc, avail, used);
    d.transport->write_queue_ready(1);
}
void resize(Device& d, uint16_t size) {
    d.transport->write_queue_ready(0);
    d.transport->write_queue_size(size);
    d.transport->write_queue_ready(1);
}

uint16_t ring_in_device_window(Device& d) {
    return bad_queue_setup(
        d, [](Device& dev, Ring& r) { reprogram(dev, dev.transport->window_base(), gpa_of(r.avail), gpa_of(r.used)); });
}
uint16_t ring_outside_ram(Device& d) {
    return bad_queue_setup(d,
                           [](Device& dev, Ring& r) { reprogram(dev, gpa_of(r.desc), gpa_of(r.avail), kBeyondRam); });
}
uint16_t ring_straddling_ram_end(Device& d) {
    return bad_queue_setup(d, [](Device& dev, Ring& r) {
        reprogram(dev, gpa_of(r.desc), gpa_of(r.avail), (g_ram_top - 8) & ~uint64_t{3});
    });
}
uint16_t ring_misaligned(Device& d) {
    return bad_queue_setup(
        d, [](Device& dev, Ring& r) { reprogram(dev, gpa_of(r.desc) + 8, gpa_of(r.avail) + 1, gpa_of(r.used) + 2); });
}
uint16_t queue_size_not_power_of_two(Device& d) {
    return bad_queue_setup(d, [](Device& dev, Ring&) { resize(dev, 6); });
}
uint16_t queue_size_zero(Device& d) {
    return bad_queue_setup(d, [](Device& dev, Ring&) { resize(dev, 0); });
}
uint16_t queue_size_above_max(Device& d) {
    return bad_queue_setup(d, [](Device& dev, Ring&) { resize(dev, 0x8000); });
}

// Rings on top of each other: legal addresses, nonsense layout. The device
// may serve, refuse or ignore; keel must not crash and must recover.
template <class Tweak>
uint16_t overlapping_rings(Device& d, Tweak tweak) {
    if (!negotiate(d, d.normal_features())) return kBroken;
    setup_rings(d);
    d.transport->select_queue(d.request_queue);
    Ring& ring = request_ring(d);
    tweak(d, ring);
    d.transport->write_status(kDriverOkStatus);
    if (needs_reset(d)) return kNeedsReset;
    return request_with_buffer(d, arena_alloc(64), 64);
}
uint16_t used_ring_over_avail_ring(Device& d) {
    return overlapping_rings(d, [](Device& dev, Ring& r) {
        reprogram(dev, gpa_of(r.desc), gpa_of(r.avail), gpa_of(r.avail));
        r.used = reinterpret_cast<vring_used*>(r.avail);
    });
}
uint16_t desc_table_over_used_ring(Device& d) {
    return overlapping_rings(d, [](Device& dev, Ring& r) {
        reprogram(dev, gpa_of(r.used), gpa_of(r.avail), gpa_of(r.used));
        r.desc = reinterpret_cast<vring_desc*>(r.used);
    });
}

// --- Register writes a running device must ignore ---

uint16_t queue_size_change_after_driver_ok(Device& d) {
    Transport& t = *d.transport;
    t.select_queue(d.request_queue);
    const uint16_t before = t.queue_size();
    t.write_queue_size(2);
    if (t.queue_size() != before) return kBroken;
    return ignored_if_still_works(d);
}

uint16_t ring_move_after_driver_ok(Device& d) {
    Transport& t = *d.transport;
    t.select_queue(d.request_queue);
    const uint64_t before = t.queue_desc();
    t.write_queue_rings(kBeyondRam, kBeyondRam, kBeyondRam);
    if (t.queue_desc() != before) return kBroken;
    return ignored_if_still_works(d);
}

uint16_t queue_disable_after_driver_ok(Device& d) {
    d.transport->select_queue(d.request_queue);
    d.transport->write_queue_ready(0);
    if (!d.transport->queue_ready()) return kBroken;
    return ignored_if_still_works(d);
}

uint16_t feature_renegotiation(Device& d) {
    Transport& t = *d.transport;
    const uint64_t before = t.driver_features();
    t.write_driver_features(d.offered);
    if (t.driver_features() != before) return kBroken;
    return ignored_if_still_works(d);
}

uint16_t status_bits_cleared(Device& d) {
    d.transport->write_status(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    if ((d.transport->status() & VIRTIO_CONFIG_S_DRIVER_OK) == 0) return kBroken;
    return ignored_if_still_works(d);
}

uint16_t unoffered_feature(Device& d) {
    return negotiate(d, d.normal_features() | bit(50)) ? kServed : kRefused;
}
uint16_t without_version_1(Device& d) {
    return negotiate(d, d.normal_features() & ~bit(VIRTIO_F_VERSION_1)) ? kServed : kRefused;
}

uint16_t driver_ok_without_features_ok(Device& d) {
    if (!reset(d)) return kBroken;
    Transport& t = *d.transport;
    t.write_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    t.write_driver_features(d.normal_features());
    setup_rings(d);
    t.write_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
    return (t.status() & VIRTIO_CONFIG_S_DRIVER_OK) != 0 ? kServed : kRefused;
}

// --- Notifications ---

uint16_t notify_missing_queues(Device& d) {
    const uint16_t targets[] = {static_cast<uint16_t>(d.ring_count + 3), 0x7FFF, 0xFFFF};
    for (uint16_t queue : targets) d.transport->notify(queue);
    return ignored_if_still_works(d);
}

uint16_t notify_flood(Device& d) {
    for (int i = 0; i < 10000; ++i) d.transport->notify(d.request_queue);
    return ignored_if_still_works(d);
}

// A broken ring kicked ten thousand times: one error, not ten thousand (keel
// must neither spin on it nor log each kick).
uint16_t broken_ring_flood(Device& d) {
    Ring& ring = request_ring(d);
    const auto self = static_cast<uint16_t>(ring.next_desc % ring.size);
    ring.add(arena_alloc(64), 64, static_cast<uint16_t>(data_flags(d) | VRING_DESC_F_NEXT), self);
    ring.publish(self);
    for (int i = 0; i < 10000; ++i) d.transport->notify(d.request_queue);
    return wait_needs_reset(d, kObserveMs) ? kNeedsReset : kSilent;
}

constexpr uint16_t kReset = kNeedsReset;
constexpr uint16_t kAnswer = kNeedsReset | kError | kServed;

const Attack kAttacks[] = {
    {"descriptor-loop", kAllDevices, false, kReset, descriptor_loop},
    {"descriptor-self-loop", kAllDevices, false, kReset, descriptor_self_loop},
    {"head-index-past-queue-size", kAllDevices, false, kReset, head_index_past_size},
    {"head-index-0xffff", kAllDevices, false, kReset, head_index_max},
    {"next-index-past-queue-size", kAllDevices, false, kReset, next_index_past_size},
    {"avail-idx-jump", kAllDevices, false, kReset, avail_index_jump},
    {"unknown-descriptor-flags", kAllDevices, false, kReset, unknown_descriptor_flags},
    {"writable-before-readable", kAllDevices, false, kReset, writable_before_readable},
    {"chain-above-4gib", kAllDevices, false, kReset, chain_above_4gib},
    {"buffer-outside-ram", kAllDevices, false, kReset, buffer_outside_ram},
    {"buffer-straddling-ram-end", kAllDevices, false, kReset, buffer_straddling_ram_end},
    {"buffer-straddling-mmio-hole", kAllDevices, false, kReset, buffer_straddling_mmio_hole},
    {"buffer-in-device-window", kAllDevices, false, kReset, buffer_in_device_window},
    {"buffer-address-wraps", kAllDevices, false, kReset, buffer_address_wraps},
    {"length-4gib", kAllDevices, false, kReset, length_4gib},
    {"zero-length", kAllDevices, false, kAnswer, zero_length},
    {"indirect-in-indirect", kAllDevices, false, kReset, indirect_in_indirect},
    {"indirect-table-oversized", kAllDevices, false, kReset, indirect_table_oversized},
    {"indirect-table-bad-length", kAllDevices, false, kReset, indirect_table_bad_length},
    {"indirect-table-empty", kAllDevices, false, kReset, indirect_table_empty},
    {"indirect-table-outside-ram", kAllDevices, false, kReset, indirect_table_outside_ram},
    {"indirect-with-next", kAllDevices, false, kReset, indirect_with_next},
    {"indirect-not-negotiated", kAllDevices, false, kReset, indirect_not_negotiated},
    {"ring-in-device-window", kAllDevices, false, kReset, ring_in_device_window},
    {"ring-outside-ram", kAllDevices, false, kReset, ring_outside_ram},
    {"ring-straddling-ram-end", kAllDevices, false, kReset, ring_straddling_ram_end},
    {"ring-misaligned", kAllDevices, false, kReset, ring_misaligned},
    {"queue-size-not-power-of-two", kAllDevices, false, kReset, queue_size_not_power_of_two},
    {"queue-size-zero", kAllDevices, false, kReset, queue_size_zero},
    {"queue-size-above-max", kAllDevices, false, kReset, queue_size_above_max},
    {"used-ring-over-avail-ring", kAllDevices, false, kAnyOutcome, used_ring_over_avail_ring},
    {"desc-table-over-used-ring", kAllDevices, false, kAnyOutcome, desc_table_over_used_ring},
    {"queue-size-change-after-driver-ok", kAllDevices, false, kIgnored, queue_size_change_after_driver_ok},
    {"ring-move-after-driver-ok", kAllDevices, false, kIgnored, ring_move_after_driver_ok},
    {"queue-disable-after-driver-ok", kAllDevices, false, kIgnored, queue_disable_after_driver_ok},
    {"feature-renegotiation", kAllDevices, false, kIgnored, feature_renegotiation},
    {"status-bits-cleared", kAllDevices, false, kIgnored, status_bits_cleared},
    {"unoffered-feature", kAllDevices, false, kRefused, unoffered_feature},
    {"without-version-1", kAllDevices, false, kRefused, without_version_1},
    {"driver-ok-without-features-ok", kAllDevices, false, kRefused, driver_ok_without_features_ok},
    {"notify-missing-queues", kAllDevices, false, kIgnored, notify_missing_queues},
    {"notify-flood", kAllDevices, false, kIgnored, notify_flood},
    {"broken-ring-notify-flood", kAllDevices, false, kReset, broken_ring_flood},
    {"window-out-of-range", kAllDevices, false, kIgnored, window_out_of_range},
    {"msix-table-abuse", kAllDevices, true, kIgnored, msix_abuse},
    {"blk-sector-past-capacity", kBlock, false, kError, blk_sector_past_capacity},
    {"blk-sector-overflow", kBlock, false, kError, blk_sector_overflow},
    {"blk-partial-sector", kBlock, false, kError, blk_partial_sector},
    {"blk-unknown-type", kBlock, false, kError, blk_unknown_type},
    {"blk-short-header", kBlock, false, kError | kReset, blk_short_header},
    {"blk-no-status-byte", kBlock, false, kError | kReset, blk_no_status_byte},
    {"net-tx-oversized-frame", kNet, false, kServed | kReset, net_tx_oversized_frame},
    {"net-tx-header-only", kNet, false, kServed | kReset, net_tx_header_only},
    {"net-tx-short-header", kNet, false, kServed | kReset, net_tx_short_header},
    {"net-ctrl-unknown-class", kNet, false, kError, net_ctrl_unknown_class},
    {"net-ctrl-unknown-command", kNet, false, kError, net_ctrl_unknown_command},
    {"net-ctrl-no-ack-byte", kNet, false, kError | kReset, net_ctrl_no_ack_byte},
    {"net-rx-buffer-outside-ram", kNet, false, kReset, net_rx_buffer_outside_ram},
    {"net-rx-buffer-readable", kNet, false, kReset | kError, net_rx_buffer_readable},
    {"rng-readable-request", kRng, false, kReset, rng_readable_request},
};

}  // namespace

const char* outcome_name(uint16_t outcome) {
    switch (outcome) {
        case kNeedsReset:
            return "needs-reset";
        case kError:
            return "error";
        case kRefused:
            return "refused";
        case kIgnored:
            return "ignored";
        case kServed:
            return "served";
        case kSilent:
            return "silent";
        default:
            return "broken";
    }
}

const Attack* attacks(uint32_t* count) {
    *count = sizeof(kAttacks) / sizeof(kAttacks[0]);
    return kAttacks;
}

}  // namespace hostile
