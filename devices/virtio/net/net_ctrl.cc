// VirtioNet's control queue (virtio 1.2 §5.1.6.5), on the event-loop thread
// under m_mutex. A command is {u8 class, u8 command, payload} in the
// device-readable part and one ack byte in the device-writable part.

#include <algorithm>
#include <cerrno>
#include <array>
#include <cstring>
#include <optional>

#include "virtio/net/net_device.h"
#include "virtio/net/net_features.h"

namespace keel::virtio {
namespace {

// Internal answer of a command whose payload does not have the size its
// command defines: the driver gets VIRTIO_NET_ERR and "errors" counts it.
constexpr uint8_t kMalformed = 0xff;
static_assert(kMalformed != VIRTIO_NET_OK && kMalformed != VIRTIO_NET_ERR);

constexpr size_t kMacSize = 6;
constexpr uint16_t kVlanIds = 4096;

// The payload as one T, only when it is exactly sizeof(T) bytes.
template <typename T>
std::optional<T> read_exact(Reader& data) {
    if (data.remaining() != sizeof(T)) return std::nullopt;
    return data.read_obj<T>();
}

// One struct virtio_net_ctrl_mac (le32 entries, then entries * 6 bytes)
// into `table` (the first kMaxTableEntries; the count as sent); false when
// the payload is shorter than it claims.
bool read_mac_table(Reader& data, NetRxFilter::Table& table) {
    const auto entries = data.read_obj<uint32_t>();
    if (!entries || uint64_t{*entries} * kMacSize > data.remaining()) return false;
    const size_t kept = std::min<size_t>(*entries, NetRxFilter::kMaxTableEntries);
    for (size_t i = 0; i < kept; ++i) {
        if (!data.read(std::span<uint8_t>(table.entries[i]))) return false;  // not reached: length checked
    }
    if (!data.skip((size_t{*entries} - kept) * kMacSize)) return false;
    table.count = *entries;
    return true;
}

}  // namespace

void VirtioNet::process_ctrl() {
    if (m_ctrl.queue == nullptr) return;
    Queue& queue = *m_ctrl.queue;
    uint32_t budget = kBatch;
    // §2.7.10: drain with notifications disabled, then enable and re-check.
    for (;;) {
        queue.disable_notification();
        for (;;) {
            if (budget == 0) {
                self_kick(m_ctrl.kick_fd);
                return;
            }
            const PopStatus status = queue.pop(m_ctrl.chain);
            if (status == PopStatus::Empty) break;
            if (status == PopStatus::Broken) {
                fail_device(describe(queue.last_error()));
                return;
            }
            --budget;
            if (!serve_ctrl_chain()) return;
        }
        if (!queue.enable_notification()) return;
    }
}

bool VirtioNet::serve_ctrl_chain() {
    m_ctrl_commands.fetch_add(1, std::memory_order_relaxed);
    const DescriptorChain& chain = m_ctrl.chain;
    Reader reader = chain.reader();
    Writer writer = chain.writer();
    uint8_t ack = VIRTIO_NET_ERR;
    std::array<uint8_t, 2> header{};  // struct virtio_net_ctrl_hdr: class, cmd
    static_assert(sizeof(virtio_net_ctrl_hdr) == 2);
    if (writer.remaining() == 0) {
        // Nowhere to say whether it worked: not run at all.
        note_driver_error("control command without an ack byte");
    } else if (!reader.read(header)) {
        note_driver_error("control command shorter than its header");
    } else {
        ack = run_ctrl_command(header[0], header[1], reader);
        if (ack == kMalformed) {
            note_driver_error("control command with a malformed payload");
            ack = VIRTIO_NET_ERR;
        }
    }
    const uint32_t len = writer.write_obj(ack) ? 1 : 0;
    return add_used(*m_ctrl.queue, chain.head_index(), len, m_ctrl.used_added);
}

// Unknown classes and commands, and commands of features the driver did not
// negotiate, get VIRTIO_NET_ERR (a driver may probe).
uint8_t VirtioNet::run_ctrl_command(uint8_t cls, uint8_t cmd, Reader& data) {
    switch (cls) {
        case VIRTIO_NET_CTRL_RX:
            return ctrl_rx(cmd, data);
        case VIRTIO_NET_CTRL_MAC:
            return ctrl_mac(cmd, data);
        case VIRTIO_NET_CTRL_VLAN:
            return ctrl_vlan(cmd, data);
        case VIRTIO_NET_CTRL_MQ:
            return ctrl_mq(cmd, data);
        case VIRTIO_NET_CTRL_GUEST_OFFLOADS:
            return ctrl_guest_offloads(cmd, data);
        default:
            return VIRTIO_NET_ERR;
    }
}

// §5.1.6.5.1: one u8, on or off; read_frame() applies them (NetRxFilter).
uint8_t VirtioNet::ctrl_rx(uint8_t cmd, Reader& data) {
    if (!has(VIRTIO_NET_F_CTRL_RX)) return VIRTIO_NET_ERR;
    bool* mode = nullptr;
    switch (cmd) {
        case VIRTIO_NET_CTRL_RX_PROMISC:
            mode = &m_rx_filter.promisc;
            break;
        case VIRTIO_NET_CTRL_RX_ALLMULTI:
            mode = &m_rx_filter.allmulti;
            break;
        case VIRTIO_NET_CTRL_RX_ALLUNI:
            mode = &m_rx_filter.alluni;
            break;
        case VIRTIO_NET_CTRL_RX_NOMULTI:
            mode = &m_rx_filter.nomulti;
            break;
        case VIRTIO_NET_CTRL_RX_NOUNI:
            mode = &m_rx_filter.nouni;
            break;
        case VIRTIO_NET_CTRL_RX_NOBCAST:
            mode = &m_rx_filter.nobcast;
            break;
        default:
            return VIRTIO_NET_ERR;
    }
    const auto on = read_exact<uint8_t>(data);
    if (!on) return kMalformed;
    *mode = *on != 0;
    return VIRTIO_NET_OK;
}

// §5.1.6.5.2: TABLE_SET is two struct virtio_net_ctrl_mac (unicast, then
// multicast) filling the payload exactly; ADDR_SET is one MAC, which the
// config space then reports.
uint8_t VirtioNet::ctrl_mac(uint8_t cmd, Reader& data) {
    if (cmd == VIRTIO_NET_CTRL_MAC_TABLE_SET) {
        if (!has(VIRTIO_NET_F_CTRL_RX)) return VIRTIO_NET_ERR;
        // Both tables or neither: a malformed command leaves the filter as it was.
        NetRxFilter::Table unicast;
        NetRxFilter::Table multicast;
        if (!read_mac_table(data, unicast) || !read_mac_table(data, multicast) || data.remaining() != 0) {
            return kMalformed;
        }
        m_rx_filter.unicast = unicast;
        m_rx_filter.multicast = multicast;
        return VIRTIO_NET_OK;
    }
    if (cmd == VIRTIO_NET_CTRL_MAC_ADDR_SET) {
        if (!has(VIRTIO_NET_F_CTRL_MAC_ADDR)) return VIRTIO_NET_ERR;
        const auto mac = read_exact<std::array<uint8_t, kMacSize>>(data);
        if (!mac) return kMalformed;
        m_mac = *mac;
        return VIRTIO_NET_OK;
    }
    return VIRTIO_NET_ERR;
}

// §5.1.6.5.3: one le16 VLAN id; tagged frames pass the filter only for ids
// the driver added.
uint8_t VirtioNet::ctrl_vlan(uint8_t cmd, Reader& data) {
    if (!has(VIRTIO_NET_F_CTRL_VLAN)) return VIRTIO_NET_ERR;
    if (cmd != VIRTIO_NET_CTRL_VLAN_ADD && cmd != VIRTIO_NET_CTRL_VLAN_DEL) return VIRTIO_NET_ERR;
    const auto vid = read_exact<uint16_t>(data);
    if (!vid) return kMalformed;
    if (*vid >= kVlanIds) return VIRTIO_NET_ERR;
    m_rx_filter.set_vlan(*vid, cmd == VIRTIO_NET_CTRL_VLAN_ADD);
    return VIRTIO_NET_OK;
}

// §5.1.6.5.5: VQ_PAIRS_SET with 1..max_virtqueue_pairs (RSS and hash
// configuration are not offered).
uint8_t VirtioNet::ctrl_mq(uint8_t cmd, Reader& data) {
    if (!has(VIRTIO_NET_F_MQ) || cmd != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET) return VIRTIO_NET_ERR;
    const auto request = read_exact<virtio_net_ctrl_mq>(data);
    if (!request) return kMalformed;
    const uint16_t pairs = request->virtqueue_pairs;
    if (pairs < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN || pairs > m_usable_pairs) return VIRTIO_NET_ERR;
    if (!attach_backend_queues(pairs)) {
        // The driver keeps the pairs it had (Linux does on an error).
        (void)attach_backend_queues(m_active_pairs);
        return VIRTIO_NET_ERR;
    }
    set_active_pairs(pairs);
    return VIRTIO_NET_OK;
}

// Attaches the backend queues of the first `active_pairs` pairs and detaches
// the rest, so the host never queues frames where the driver cannot receive
// them. False when a queue could not be attached (a detach that fails is
// noted and leaves the queue receiving, as before).
bool VirtioNet::attach_backend_queues(size_t active_pairs) {
    bool ok = true;
    for (size_t i = 1; i < m_pairs.size(); ++i) {
        Pair& pair = m_pairs[i];
        const bool want = i < active_pairs;
        if (pair.backend_attached == want) continue;
        if (m_backend->set_queue_attached(i, want)) {
            pair.backend_attached = want;
        } else {
            note_backend_error(want ? "attaching a queue" : "detaching a queue", errno);
            if (want) ok = false;
        }
    }
    return ok;
}

// §5.1.6.5.6: a le64 of GUEST_* bits, each one negotiated; handed to the
// backend as TUNSETOFFLOAD flags.
uint8_t VirtioNet::ctrl_guest_offloads(uint8_t cmd, Reader& data) {
    if (!has(VIRTIO_NET_F_CTRL_GUEST_OFFLOADS) || cmd != VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET) return VIRTIO_NET_ERR;
    const auto offloads = read_exact<uint64_t>(data);
    if (!offloads) return kMalformed;
    if ((*offloads & ~(m_acked & kNetGuestOffloadFeatures)) != 0) return VIRTIO_NET_ERR;
    const unsigned flags = tun_offloads_for(*offloads);
    if (!m_backend->set_offloads(flags)) {
        note_backend_error("setting the receive offloads", 0);
        return VIRTIO_NET_ERR;
    }
    m_guest_offloads = flags;
    return VIRTIO_NET_OK;
}

// Receive queues of pairs that become active start watching their backend
// fd; those that become inactive stop (their pending frame and held chains
// wait). Transmit queues are served either way.
void VirtioNet::set_active_pairs(size_t pairs) {
    const size_t old = m_active_pairs;
    m_active_pairs = pairs;
    for (size_t i = std::min(old, pairs); i < std::max(old, pairs) && i < m_usable_pairs; ++i) {
        RxState& rx = m_pairs[i].rx;
        mark_watch(rx, i < pairs && rx.queue != nullptr);
    }
}

}  // namespace keel::virtio
