#include "virtio/net/net_rx_filter.h"

#include <algorithm>

namespace keel::virtio {
namespace {

constexpr size_t kEthHeader = 14;  // destination, source, EtherType
constexpr size_t kEtherTypeOffset = 12;
constexpr size_t kVlanTciOffset = 14;
constexpr uint16_t kEtherTypeVlan = 0x8100;  // 802.1Q, network byte order on the wire

bool equal(std::span<const uint8_t, 6> a, const MacAddress& b) {
    return std::equal(a.begin(), a.end(), b.begin());
}

uint16_t load_be16(std::span<const uint8_t> bytes, size_t at) {
    return static_cast<uint16_t>((bytes[at] << 8) | bytes[at + 1]);
}

}  // namespace

bool NetRxFilter::Table::contains(std::span<const uint8_t, 6> mac) const {
    const size_t used = std::min<size_t>(count, kMaxTableEntries);
    return std::any_of(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(used),
                       [mac](const MacAddress& entry) { return equal(mac, entry); });
}

void NetRxFilter::set_vlan_filtering(bool on) {
    m_vlan_filtering = on;
    m_vlans.reset();
}

bool NetRxFilter::accepts(std::span<const uint8_t> frame, const MacAddress& own) const {
    if (promisc) return true;
    // Not an Ethernet frame: nothing to judge it by, and the guest's stack
    // would drop it anyway.
    if (frame.size() < kEthHeader) return false;
    if (load_be16(frame, kEtherTypeOffset) == kEtherTypeVlan) {
        if (frame.size() < kEthHeader + 2 || !vlan_allowed(load_be16(frame, kVlanTciOffset))) return false;
    }
    const std::span<const uint8_t, 6> destination = frame.first<6>();
    if ((destination[0] & 1) != 0) {  // group address
        if (std::all_of(destination.begin(), destination.end(), [](uint8_t b) { return b == 0xff; })) return !nobcast;
        if (nomulti) return false;
        return allmulti || multicast.overflow() || multicast.contains(destination);
    }
    if (nouni) return false;
    return alluni || unicast.overflow() || equal(destination, own) || unicast.contains(destination);
}

}  // namespace keel::virtio
