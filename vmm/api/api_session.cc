#include "api/api_session.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <csignal>

#include "common/error.h"
#include "core/event_loop.h"
#include "core/stop_controller.h"
#include "core/termination_signals.h"

namespace keel::api {

namespace {

ApiServer::Dispatch through(ApiMailbox& mailbox) {
    // Parsing and routing happen on the API thread; only a well-formed action
    // reaches the VMM thread.
    return [&mailbox](const HttpRequest& request) {
        auto parsed = parse_api_request(request);
        if (auto* response = std::get_if<ApiResponse>(&parsed)) return *response;
        return mailbox.submit(std::move(std::get<ApiAction>(parsed)));
    };
}

}  // namespace

ApiSession::ApiSession(const std::string& socket_path, VmResources resources, VmControllerOptions options)
    : m_seccomp(options.command_line.seccomp), m_controller(std::move(resources), std::move(options)) {
    if (!socket_path.empty()) m_server.emplace(socket_path, ApiServerLimits{}, through(m_mailbox), m_seccomp);
}

ApiSession::~ApiSession() {
    // Before m_server's thread is joined: it may be waiting for an answer.
    m_mailbox.close("The microVM has stopped.");
}

void ApiSession::answer_requests() {
    m_mailbox.drain([this](const ApiAction& action) { return m_controller.handle(action); });
}

bool ApiSession::wait_for_instance_start() {
    EventLoop events;
    StopController stop;
    TerminationSignals signals(events, stop);
    events.add_control(m_mailbox.fd(), [this] { answer_requests(); });
    events.run_until([&] { return stop.stopping() || m_controller.state() != VmState::NotStarted; });
    events.remove(m_mailbox.fd());
    if (m_controller.state() != VmState::NotStarted) return true;
    m_signal_exit_status = 128 + (stop.signal_number() != 0 ? stop.signal_number() : SIGTERM);
    return false;
}

int ApiSession::run(std::chrono::seconds metrics_period) {
    Machine& vm = machine();
    vm.add_control_fd(m_mailbox.fd(), [this] { answer_requests(); });
    // Firecracker's periodic metrics flush; it goes on while the VM is paused.
    UniqueFd timer(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!timer.valid()) throw_errno("timerfd_create");
    itimerspec period{};
    period.it_interval.tv_sec = metrics_period.count();
    period.it_value.tv_sec = metrics_period.count();
    if (timerfd_settime(timer.get(), 0, &period, nullptr) != 0) throw_errno("timerfd_settime");
    vm.add_control_fd(timer.get(), [this, fd = timer.get()] {
        uint64_t expirations = 0;
        (void)!::read(fd, &expirations, sizeof expirations);
        m_controller.flush_metrics();
    });
    const int status = vm.run();
    vm.remove_control_fd(timer.get());
    vm.remove_control_fd(m_mailbox.fd());
    m_mailbox.close("The microVM has stopped.");
    m_controller.flush_metrics();
    return status;
}

}  // namespace keel::api
