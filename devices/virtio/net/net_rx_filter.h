#pragma once

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <span>

namespace keel::virtio {

using MacAddress = std::array<uint8_t, 6>;

// The receive filter the driver programs through the control queue (virtio
// 1.2 §5.1.6.5.1-3): which destination addresses and VLANs it wants. A TAP
// on a bridge is handed every flooded frame, so without this a guest that
// turned promiscuous mode off would still see other machines' unicast.
//
// Same rules as QEMU's virtio-net, so a guest sees what it saw there:
// promiscuous until the driver says otherwise (a driver without CTRL_RX
// cannot say anything, §5.1.6.5.1); a table longer than kMaxTableEntries
// turns into "all of that class"; with CTRL_VLAN, tagged frames pass only for
// VLAN ids the driver added. Fixed-size state: no allocation per frame or
// command.
class NetRxFilter {
public:
    static constexpr size_t kMaxTableEntries = 64;

    struct Table {
        std::array<MacAddress, kMaxTableEntries> entries{};
        uint32_t count = 0;  // as the driver sent it (may exceed the array)
        [[nodiscard]] bool overflow() const { return count > kMaxTableEntries; }
        [[nodiscard]] bool contains(std::span<const uint8_t, 6> mac) const;
    };

    // Modes (VIRTIO_NET_CTRL_RX_*).
    bool promisc = true;
    bool allmulti = false;
    bool alluni = false;
    bool nomulti = false;
    bool nouni = false;
    bool nobcast = false;
    Table unicast;
    Table multicast;

    // At activation: with CTRL_VLAN negotiated every VLAN starts filtered
    // out; without it the driver cannot add any, so none is.
    void set_vlan_filtering(bool on);
    void set_vlan(uint16_t vid, bool allowed) { m_vlans.set(vid & 0xfff, allowed); }
    [[nodiscard]] bool vlan_allowed(uint16_t vid) const { return !m_vlan_filtering || m_vlans.test(vid & 0xfff); }

    // `frame` starts at the Ethernet destination address (after the vnet
    // header); `own` is the device's current MAC.
    [[nodiscard]] bool accepts(std::span<const uint8_t> frame, const MacAddress& own) const;

private:
    bool m_vlan_filtering = false;
    std::bitset<4096> m_vlans;
};

}  // namespace keel::virtio
