#include "core/stop_controller.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "common/error.h"

namespace keel {

StopController::StopController() : m_wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!m_wake.valid()) throw_errno("eventfd");
}

void StopController::stop(StopReason reason, const std::string& detail) {
    StopReason expected = StopReason::None;
    if (!m_reason.compare_exchange_strong(expected, reason, std::memory_order_acq_rel)) return;
    {
        std::lock_guard lock(m_detail_mutex);
        m_detail = detail;
    }
    const uint64_t one = 1;
    (void)!::write(m_wake.get(), &one, sizeof one);
}

void StopController::stop_by_signal(int signal_number, const std::string& detail) {
    if (stopping()) return;
    m_signal.store(signal_number, std::memory_order_release);
    stop(StopReason::Signal, detail);
}

std::string StopController::detail() const {
    std::lock_guard lock(m_detail_mutex);
    return m_detail;
}

const char* stop_reason_name(StopReason reason) {
    switch (reason) {
        case StopReason::None: return "running";
        case StopReason::PowerOff: return "poweroff";
        case StopReason::Reboot: return "reboot";
        case StopReason::TripleFault: return "triple-fault";
        case StopReason::ConsoleQuit: return "console-quit";
        case StopReason::Signal: return "signal";
        case StopReason::Error: return "error";
    }
    return "unknown";
}

}  // namespace keel
