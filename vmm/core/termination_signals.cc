#include "core/termination_signals.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "common/error.h"

namespace keel {

namespace {

sigset_t termination_set() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    return set;
}

}  // namespace

TerminationSignals::TerminationSignals(EventLoop& loop, StopController& stop) : m_loop(loop), m_stop(stop) {
    const sigset_t set = termination_set();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    m_signalfd = UniqueFd(signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!m_signalfd.valid()) throw_errno("signalfd");
    m_loop.add_control(m_signalfd.get(), [this] { on_readable(); });
}

TerminationSignals::~TerminationSignals() { m_loop.remove(m_signalfd.get()); }

void TerminationSignals::on_readable() {
    signalfd_siginfo info{};
    if (read(m_signalfd.get(), &info, sizeof info) != sizeof info) return;
    const auto number = static_cast<int>(info.ssi_signo);
    m_stop.stop_by_signal(number, std::string("received ") + strsignal(number));
}

}  // namespace keel
