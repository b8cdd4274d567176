#pragma once

#include "common/fd.h"
#include "core/event_loop.h"
#include "core/stop_controller.h"

namespace keel {

// SIGINT, SIGTERM and SIGHUP stop the VM through the event loop (a signalfd).
// The signals are blocked in the constructing thread; vCPU threads are
// started with them blocked too (see Machine), so the signalfd sees each one.
class TerminationSignals {
public:
    TerminationSignals(EventLoop& loop, StopController& stop);
    ~TerminationSignals();
    TerminationSignals(const TerminationSignals&) = delete;
    TerminationSignals& operator=(const TerminationSignals&) = delete;

private:
    void on_readable();

    EventLoop& m_loop;
    StopController& m_stop;
    UniqueFd m_signalfd;
};

}  // namespace keel
