#include "core/console_input.h"

#include <unistd.h>

#include <cerrno>
#include <string>

#include "common/error.h"

namespace keel {

ConsoleInput::ConsoleInput(EventLoop& loop, StopController& stop, int console_fd, int rx_room_fd, ConsoleSink sink,
                           ConsoleEscapes escapes)
    : m_loop(loop),
      m_stop(stop),
      m_console_fd(console_fd),
      m_rx_room_fd(rx_room_fd),
      m_sink(std::move(sink)),
      m_escapes(escapes) {
    m_loop.add(m_rx_room_fd, [this] { on_rx_room(); });
    watch_console();
}

ConsoleInput::~ConsoleInput() {
    unwatch_console();
    m_loop.remove(m_rx_room_fd);
}

void ConsoleInput::watch_console() {
    if (m_console_watched || m_console_at_eof || m_console_fd < 0) return;
    // stdin may be /dev/null or a regular file, which epoll refuses: then
    // there is simply no console input.
    try {
        m_loop.add(m_console_fd, [this] { on_console_readable(); });
        m_console_watched = true;
    } catch (const Error&) {
        m_console_at_eof = true;
    }
}

void ConsoleInput::unwatch_console() {
    if (!m_console_watched) return;
    m_loop.remove(m_console_fd);
    m_console_watched = false;
}

void ConsoleInput::on_console_readable() {
    uint8_t buf[256];
    const ssize_t got = read(m_console_fd, buf, sizeof buf);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
        // EOF: the guest keeps running without console input.
        unwatch_console();
        m_console_at_eof = true;
        return;
    }
    if (got < 0) return;
    std::span<const uint8_t> input(buf, static_cast<size_t>(got));
    if (m_escapes == ConsoleEscapes::Interpret) {
        auto result = m_escape.feed(input);
        if (result.action == ConsoleEscape::Action::Quit) {
            m_stop.stop(StopReason::ConsoleQuit, "Ctrl-A x");
            return;
        }
        if (result.action == ConsoleEscape::Action::Help) {
            const std::string help = ConsoleEscape::help_text();
            (void)!write(STDERR_FILENO, help.data(), help.size());
        }
        m_pending.insert(m_pending.end(), result.to_guest.begin(), result.to_guest.end());
    } else {
        m_pending.insert(m_pending.end(), input.begin(), input.end());
    }
    offer_pending();
    // Stop reading until the guest drains its receive FIFO.
    if (!m_pending.empty()) unwatch_console();
}

void ConsoleInput::on_rx_room() {
    uint64_t count = 0;
    (void)!read(m_rx_room_fd, &count, sizeof count);
    offer_pending();
    if (m_pending.empty()) watch_console();
}

void ConsoleInput::offer_pending() {
    if (m_pending.empty()) return;
    const size_t taken = m_sink.deliver(m_pending);
    m_pending.erase(m_pending.begin(), m_pending.begin() + static_cast<std::ptrdiff_t>(taken));
}

}  // namespace keel
