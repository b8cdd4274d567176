#include "virtio/net/net_options.h"

#include <net/if.h>

#include <array>
#include <charconv>
#include <cstdio>

#include "common/error.h"
#include "common/option_list.h"

namespace keel::net {
namespace {

constexpr std::array kKeys{std::string_view{"tap"}, std::string_view{"fd"}, std::string_view{"mac"},
                           std::string_view{"id"}};
[[noreturn]] void fail(const std::string& message) {
    throw Error("--net: " + message);
}

// What the kernel accepts as an interface name (dev_valid_name()): 1-15
// bytes, not "." or "..", no '/', ':' or whitespace.
bool valid_interface_name(std::string_view name) {
    if (name.empty() || name.size() >= IFNAMSIZ || name == "." || name == "..") return false;
    for (const char c : name) {
        if (c == '/' || c == ':' || c <= ' ' || c == 0x7f) return false;
    }
    return true;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

void apply(NetOptions& options, std::string_view key, std::string_view value) {
    if (key == "tap") {
        if (!valid_interface_name(value)) {
            fail("tap=" + std::string(value) +
                 " is not a valid interface name (1-15 characters, no '/', ':' or spaces)");
        }
        options.tap_name = value;
    } else if (key == "fd") {
        int fd = -1;
        const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), fd);
        if (error != std::errc{} || end != value.data() + value.size() || fd < 0) {
            fail("fd=" + std::string(value) + " is not a file descriptor number");
        }
        options.tap_fd = fd;
    } else if (key == "mac") {
        const auto mac = parse_mac(value);
        if (!mac) fail("mac=" + std::string(value) + " is not a MAC address like 02:00:00:00:00:01");
        if (((*mac)[0] & 0x01) != 0) fail("mac=" + std::string(value) + " is a multicast address");
        if (*mac == MacAddress{}) fail("mac=" + std::string(value) + " is the all-zero address");
        options.mac = mac;
    } else if (key == "id") {
        if (!is_valid_device_id(value)) fail("id=" + std::string(value) + " must be 1-32 characters of A-Z a-z 0-9 _ -");
        options.id = value;
    }
}

}  // namespace

std::optional<MacAddress> parse_mac(std::string_view text) {
    if (text.size() != 17) return std::nullopt;
    const char separator = text[2];
    if (separator != ':' && separator != '-') return std::nullopt;
    MacAddress mac{};
    for (size_t i = 0; i < mac.size(); ++i) {
        const size_t at = i * 3;
        if (i > 0 && text[at - 1] != separator) return std::nullopt;
        const int high = hex_digit(text[at]);
        const int low = hex_digit(text[at + 1]);
        if (high < 0 || low < 0) return std::nullopt;
        mac[i] = static_cast<uint8_t>(high * 16 + low);
    }
    return mac;
}

std::string format_mac(const MacAddress& mac) {
    char text[18];
    std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    return text;
}

MacAddress default_mac(std::string_view id, std::string_view interface_name) {
    // FNV-1a over "id/interface": stable across runs and builds (std::hash is not).
    uint64_t hash = 0xcbf29ce484222325ULL;
    const auto mix = [&hash](std::string_view text) {
        for (const char c : text) {
            hash ^= static_cast<uint8_t>(c);
            hash *= 0x100000001b3ULL;
        }
    };
    mix(id);
    mix("/");
    mix(interface_name);
    MacAddress mac{};
    mac[0] = 0x02;  // locally administered, unicast
    for (size_t i = 1; i < mac.size(); ++i) mac[i] = static_cast<uint8_t>(hash >> (8 * (i - 1)));
    return mac;
}

NetOptions parse_net_option(std::string_view text) {
    NetOptions options;
    for (const auto& [key, value] : split_option_list(text, "--net", kKeys)) apply(options, key, value);
    const bool has_tap = !options.tap_name.empty();
    if (has_tap == options.uses_fd()) fail("give exactly one of tap=NAME and fd=N");
    return options;
}

}  // namespace keel::net
