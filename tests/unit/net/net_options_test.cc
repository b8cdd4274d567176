#include "virtio/net/net_options.h"

#include <catch2/catch.hpp>
#include <string>

#include "common/error.h"

using namespace keel;
using namespace keel::net;

TEST_CASE("a net option with tap=NAME, mac and id", "[net][options]") {
    const auto options = parse_net_option("tap=ktap0,mac=02:00:5E:10:00:01,id=uplink");
    CHECK(options.tap_name == "ktap0");
    CHECK_FALSE(options.uses_fd());
    REQUIRE(options.mac.has_value());
    CHECK(format_mac(*options.mac) == "02:00:5e:10:00:01");
    CHECK(options.id == "uplink");
}

TEST_CASE("a net option with fd=N", "[net][options]") {
    const auto options = parse_net_option("fd=5");
    CHECK(options.uses_fd());
    CHECK(options.tap_fd == 5);
    CHECK(options.tap_name.empty());
    CHECK_FALSE(options.mac.has_value());
}

TEST_CASE("MAC addresses: colons or dashes, six hex pairs", "[net][options]") {
    CHECK(parse_mac("02-00-00-00-00-0a").has_value());
    CHECK(format_mac(*parse_mac("AA:bb:CC:dd:EE:ff")) == "aa:bb:cc:dd:ee:ff");
    for (const char* bad : {"", "02:00:00:00:00", "02:00:00:00:00:00:00", "02:00:00:00:00:0g", "02:00-00:00:00:00",
                            "020:0:00:00:00:00", "02:00:00:00:00:0 ", " 2:00:00:00:00:00"}) {
        INFO(bad);
        CHECK_FALSE(parse_mac(bad).has_value());
    }
}

TEST_CASE("malformed net option values name what is wrong", "[net][options]") {
    const auto message_of = [](const std::string& text) {
        try {
            (void)parse_net_option(text);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("(accepted)");
    };
    CHECK(message_of("").find("exactly one of tap=NAME and fd=N") != std::string::npos);
    CHECK(message_of("mac=02:00:00:00:00:01").find("exactly one of tap=NAME and fd=N") != std::string::npos);
    CHECK(message_of("tap=a,fd=3").find("exactly one") != std::string::npos);
    CHECK(message_of("tap=a,tap=b").find("key 'tap' given twice") != std::string::npos);
    CHECK(message_of("tap=").find("tap= needs a value") != std::string::npos);
    CHECK(message_of("tap=a,queues=4").find("unknown key 'queues'") != std::string::npos);
    CHECK(message_of("tap").find("not key=value") != std::string::npos);
    CHECK(message_of("tap=this-name-is-too-long").find("not a valid interface name") != std::string::npos);
    CHECK(message_of("tap=a/b").find("not a valid interface name") != std::string::npos);
    CHECK(message_of("tap=a:1").find("not a valid interface name") != std::string::npos);
    CHECK(message_of("fd=-1").find("not a file descriptor") != std::string::npos);
    CHECK(message_of("fd=3x").find("not a file descriptor") != std::string::npos);
    CHECK(message_of("tap=a,mac=nope").find("mac=nope") != std::string::npos);
    CHECK(message_of("tap=a,mac=03:00:00:00:00:01").find("multicast") != std::string::npos);
    CHECK(message_of("tap=a,mac=00:00:00:00:00:00").find("all-zero") != std::string::npos);
    CHECK(message_of("tap=a,id=has space").find("id=") != std::string::npos);
    CHECK(message_of("tap=a,id=").find("needs a value") != std::string::npos);
    CHECK(message_of("tap=a,,id=x").find("empty item") != std::string::npos);
    for (const char* text : {"", "tap=a,fd=3", "tap=a,mac=nope"}) {
        INFO(text);
        CHECK(message_of(text).rfind("--net: ", 0) == 0);
    }
}

TEST_CASE("default MACs are stable, unicast, locally administered and differ per NIC", "[net][options]") {
    const auto a = default_mac("net0", "ktap0");
    CHECK(a == default_mac("net0", "ktap0"));
    CHECK((a[0] & 0x01) == 0);  // unicast
    CHECK((a[0] & 0x02) != 0);  // locally administered
    CHECK(a != default_mac("net1", "ktap0"));
    CHECK(a != default_mac("net0", "ktap1"));
    // Fixed forever: a guest's udev rules and DHCP leases key on it.
    // (FNV-1a of "net0/tap0", low five bytes after 02.)
    CHECK(format_mac(default_mac("net0", "tap0")) == "02:26:f9:e1:2d:2d");
}
