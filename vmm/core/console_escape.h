#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace keel {

// Console input filter: Ctrl-A is the escape key (as in QEMU's -nographic),
// so everything else — Ctrl-C included — reaches the guest.
//   Ctrl-A x   quit keel
//   Ctrl-A h   print the escape help
//   Ctrl-A Ctrl-A   send one Ctrl-A to the guest
// Any other key after Ctrl-A is sent as typed, preceded by nothing.
class ConsoleEscape {
public:
    static constexpr uint8_t kEscapeKey = 0x01;

    enum class Action { None, Quit, Help };

    struct Result {
        std::vector<uint8_t> to_guest;
        Action action = Action::None;
    };

    // Feeds raw input bytes; returns what to forward and any action. Bytes
    // after a Quit are dropped.
    Result feed(std::span<const uint8_t> input);

    static const char* help_text();

private:
    bool m_after_escape = false;
};

}  // namespace keel
