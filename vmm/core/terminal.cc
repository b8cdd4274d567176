#include "core/terminal.h"

#include <unistd.h>

#include <cstdlib>

namespace keel {

namespace {
// One terminal at a time; kept for the atexit restore.
int g_saved_fd = -1;
termios g_saved_mode{};

void restore_saved_terminal() {
    if (g_saved_fd >= 0) tcsetattr(g_saved_fd, TCSANOW, &g_saved_mode);
}
}  // namespace

RawTerminal::RawTerminal(int fd) : m_fd(fd) {
    if (!isatty(fd) || tcgetattr(fd, &m_saved) != 0) return;
    termios raw = m_saved;
    cfmakeraw(&raw);
    // Keep output post-processing off too: the guest sends its own CR LF.
    if (tcsetattr(fd, TCSANOW, &raw) != 0) return;
    m_active = true;
    if (g_saved_fd < 0) {
        g_saved_fd = fd;
        g_saved_mode = m_saved;
        std::atexit(restore_saved_terminal);
    }
}

RawTerminal::~RawTerminal() {
    if (m_active) tcsetattr(m_fd, TCSANOW, &m_saved);
    if (g_saved_fd == m_fd) g_saved_fd = -1;
}

}  // namespace keel
