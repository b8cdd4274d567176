#pragma once

#include <termios.h>

namespace keel {

// Puts a tty into raw mode for the lifetime of the object, so every key
// (Ctrl-C, arrows, tab) goes to the guest's shell. Restores the original mode
// on destruction and, through an atexit hook, on any exit path.
class RawTerminal {
public:
    explicit RawTerminal(int fd);
    ~RawTerminal();
    RawTerminal(const RawTerminal&) = delete;
    RawTerminal& operator=(const RawTerminal&) = delete;

    [[nodiscard]] bool active() const { return m_active; }

private:
    int m_fd;
    bool m_active = false;
    termios m_saved{};
};

}  // namespace keel
