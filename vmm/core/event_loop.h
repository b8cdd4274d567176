#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

#include "core/stop_controller.h"

namespace keel {

// Where console input goes: the UART's receive path. `deliver` returns how
// many bytes the device accepted; the rest waits (back-pressure: keel stops
// reading stdin rather than dropping or buffering without bound).
struct ConsoleSink {
    std::function<size_t(std::span<const uint8_t>)> deliver;
};

// The main thread's loop while the VM runs: console input, SIGINT/SIGTERM,
// and the stop event. Returns when the VM stops for any reason. Device I/O
// (virtio) joins this loop in later issues.
class EventLoop {
public:
    // `rx_room_fd` is an eventfd signalled when the sink has room again.
    EventLoop(StopController& stop, int console_in_fd, int rx_room_fd, ConsoleSink sink, bool interpret_escapes);
    void run();

private:

    StopController& m_stop;
    int m_console_fd;
    int m_rx_room_fd;
    ConsoleSink m_sink;
    bool m_interpret_escapes;
};

}  // namespace keel
