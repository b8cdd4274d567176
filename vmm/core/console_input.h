#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/console_escape.h"
#include "core/event_loop.h"
#include "core/stop_controller.h"

namespace keel {

// Where console input goes: the UART's receive path. `deliver` returns how
// many bytes the device accepted; the rest waits (back-pressure: keel stops
// reading stdin rather than dropping or buffering without bound).
struct ConsoleSink {
    std::function<size_t(std::span<const uint8_t>)> deliver;
};

enum class ConsoleEscapes : uint8_t { Interpret, PassThrough };

// Terminal input to the guest's serial port, on the event loop: reads
// console_fd, interprets the Ctrl-A escapes when asked, and pauses reading
// while the sink is full until `rx_room_fd` (an eventfd the sink signals)
// says there is room again.
class ConsoleInput {
public:
    ConsoleInput(EventLoop& loop, StopController& stop, int console_fd, int rx_room_fd, ConsoleSink sink,
                 ConsoleEscapes escapes);
    ~ConsoleInput();
    ConsoleInput(const ConsoleInput&) = delete;
    ConsoleInput& operator=(const ConsoleInput&) = delete;

private:
    void on_console_readable();
    void on_rx_room();
    void offer_pending();
    void watch_console();
    void unwatch_console();

    EventLoop& m_loop;
    StopController& m_stop;
    int m_console_fd;
    int m_rx_room_fd;
    ConsoleSink m_sink;
    ConsoleEscapes m_escapes;
    ConsoleEscape m_escape;
    std::vector<uint8_t> m_pending;  // read from the console, not yet taken by the UART
    bool m_console_watched = false;
    bool m_console_at_eof = false;
};

}  // namespace keel
