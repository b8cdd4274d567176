#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace keel::net {

using MacAddress = std::array<uint8_t, 6>;

// One `--net tap=NAME[,mac=MAC][,id=ID]` or `--net fd=N[,mac=MAC][,id=ID]`:
// exactly one of tap_name and tap_fd is set.
struct NetOptions {
    std::string tap_name;  // IFNAMSIZ-1 characters at most
    int tap_fd = -1;       // an open TAP handed over by the caller
    std::optional<MacAddress> mac;
    std::string id;  // [A-Za-z0-9_-]{1,32}; names the device in logs and stats

    [[nodiscard]] bool uses_fd() const { return tap_fd >= 0; }
};

// Parses the value of one --net option. Throws keel::Error with a one-line
// message naming the offending key for: neither or both of tap= and fd=, an
// item without '=', an empty value, an unknown or repeated key, a TAP name
// that is no valid interface name, a negative or non-numeric fd, a malformed,
// multicast or all-zero MAC, an id outside [A-Za-z0-9_-]{1,32}.
[[nodiscard]] NetOptions parse_net_option(std::string_view text);

// "52:54:00:12:34:56" -> bytes; nullopt unless six two-digit hex groups
// separated by ':' (or '-').
[[nodiscard]] std::optional<MacAddress> parse_mac(std::string_view text);
[[nodiscard]] std::string format_mac(const MacAddress& mac);

// The MAC a NIC gets when --net names none: locally administered (02:...),
// unicast, and the same on every run for the same device id and TAP
// interface, so the guest's view (DHCP leases, udev names) stays put.
[[nodiscard]] MacAddress default_mac(std::string_view id, std::string_view interface_name);

}  // namespace keel::net
