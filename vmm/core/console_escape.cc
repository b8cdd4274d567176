#include "core/console_escape.h"

namespace keel {

ConsoleEscape::Result ConsoleEscape::feed(std::span<const uint8_t> input) {
    Result result;
    result.to_guest.reserve(input.size());
    for (const uint8_t byte : input) {
        if (!m_after_escape) {
            if (byte == kEscapeKey) {
                m_after_escape = true;
            } else {
                result.to_guest.push_back(byte);
            }
            continue;
        }
        m_after_escape = false;
        switch (byte) {
            case 'x':
            case 'X':
                result.action = Action::Quit;
                return result;
            case 'h':
            case 'H':
            case '?':
                result.action = Action::Help;
                break;
            default:
                result.to_guest.push_back(byte);  // includes a second Ctrl-A
                break;
        }
    }
    return result;
}

const char* ConsoleEscape::help_text() {
    return "\r\n[keel] console escapes: Ctrl-A x quit, Ctrl-A Ctrl-A send Ctrl-A, Ctrl-A h this help\r\n";
}

}  // namespace keel
