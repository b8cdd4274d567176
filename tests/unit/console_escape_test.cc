#include <catch2/catch.hpp>

#include <string>

#include "core/console_escape.h"

using namespace keel;

namespace {
ConsoleEscape::Result feed(ConsoleEscape& escape, const std::string& text) {
    return escape.feed(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}
std::string as_text(const std::vector<uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }
}  // namespace

TEST_CASE("ordinary keys, Ctrl-C included, pass to the guest", "[console]") {
    ConsoleEscape escape;
    const auto r = feed(escape, "ls -l\x03\r");
    CHECK(as_text(r.to_guest) == "ls -l\x03\r");
    CHECK(r.action == ConsoleEscape::Action::None);
}

TEST_CASE("Ctrl-A x quits and drops what follows", "[console]") {
    ConsoleEscape escape;
    const auto r = feed(escape, "ab\x01xcd");
    CHECK(as_text(r.to_guest) == "ab");
    CHECK(r.action == ConsoleEscape::Action::Quit);
}

TEST_CASE("the escape survives a read boundary", "[console]") {
    ConsoleEscape escape;
    CHECK(feed(escape, "a\x01").to_guest.size() == 1);
    CHECK(feed(escape, "x").action == ConsoleEscape::Action::Quit);
}

TEST_CASE("Ctrl-A Ctrl-A sends one Ctrl-A, Ctrl-A h asks for help", "[console]") {
    ConsoleEscape escape;
    const auto r = feed(escape, "\x01\x01z\x01h");
    CHECK(as_text(r.to_guest) == "\x01z");
    CHECK(r.action == ConsoleEscape::Action::Help);
}
