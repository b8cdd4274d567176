#include "core/machine.h"

#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <system_error>

#include "common/error.h"
#include "core/console_input.h"
#include "core/event_loop.h"
#include "core/termination_signals.h"
#include "core/terminal.h"
#include "legacy/i8042.h"
#include "legacy/serial.h"

namespace keel {

Machine::Machine(const VmConfig& config) : m_config(config) {}

Machine::~Machine() { stop_vcpu_threads(); }

int Machine::run() {
    RawTerminal raw_terminal(STDIN_FILENO);
    // Wakes the event loop when the UART has room again after a burst of input.
    UniqueFd rx_room(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!rx_room.valid()) throw_errno("eventfd");
    m_serial->set_rx_room_callback([fd = rx_room.get()] {
        const uint64_t one = 1;
        (void)!::write(fd, &one, sizeof one);
    });
    TerminationSignals signals(m_events, m_stop);
    m_events.add_control(m_stop.wake_fd(), [] {});  // run() sees stopping() after any handler
    ConsoleInput console(
        m_events, m_stop, STDIN_FILENO, rx_room.get(),
        ConsoleSink{[this](std::span<const uint8_t> bytes) { return m_serial->enqueue_input(bytes); }},
        raw_terminal.active() ? ConsoleEscapes::Interpret : ConsoleEscapes::PassThrough);
    m_stats.seccomp_mode = security::to_string(m_config.seccomp);
    if (m_config.stats_requested() && m_config.seccomp != security::SeccompMode::Off) {
        for (const auto role : security::kAllThreadRoles) {
            m_stats.seccomp_allowed_syscalls[std::string(security::to_string(role))] =
                security::allowed_syscall_count(role);
        }
    }
    start_vcpu_threads();
    // After the vCPU threads exist (they would inherit it and load their own
    // on top) and before the first device event the guest can cause.
    security::install_thread_filter(security::ThreadRole::EventLoop, m_config.seccomp);
    m_events.run(m_stop);
    m_events.remove(m_stop.wake_fd());
    stop_vcpu_threads();
    if (m_first_run_ns.load() != 0) m_stats.phase_at("first KVM_RUN", m_first_run_ns.load());
    m_stats.phase("guest stopped");
    collect_stats();
    m_serial->set_rx_room_callback({});
    return exit_status();
}

void Machine::start_vcpu_threads() {
    install_vcpu_kick_signal();
    // vCPU threads inherit this mask: termination signals go to the event
    // loop's signalfd only, never interrupt a vCPU.
    sigset_t blocked, previous;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &blocked, &previous);
    try {
        for (auto& runner : m_runners) {
            m_threads.emplace_back([this, r = runner.get()] {
                const std::string name = "keel-vcpu" + std::to_string(r->index());
                pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
                try {
                    security::install_thread_filter(security::ThreadRole::Vcpu, m_config.seccomp);
                } catch (const Error& e) {
                    m_stop.stop(StopReason::Error, e.what());
                    return;
                }
                r->run();
            });
        }
    } catch (const std::system_error& e) {
        // A pids.max of keel's cgroup (keel jail --cgroup) or RLIMIT_NPROC
        // that leaves no room for a thread per vCPU.
        pthread_sigmask(SIG_SETMASK, &previous, nullptr);
        const auto vcpu = m_threads.size();
        stop_vcpu_threads();
        throw Error("cannot create the thread of vCPU " + std::to_string(vcpu) + ": " + e.code().message() +
                    " (does a cgroup pids.max or RLIMIT_NPROC leave room for one thread per vCPU?)");
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

bool Machine::pause(std::chrono::milliseconds timeout) {
    if (m_pause.pause_requested()) return true;
    m_pause.request_pause();
    kick_vcpus();
    if (!m_pause.wait_until_parked(timeout)) {
        m_pause.resume();
        return false;
    }
    m_events.pause_devices();
    return true;
}

void Machine::resume() {
    if (!m_pause.pause_requested()) return;
    m_events.resume_devices();
    m_pause.resume();
}

bool Machine::send_ctrl_alt_del() { return m_i8042->trigger_ctrl_alt_del(); }

void Machine::add_control_fd(int fd, std::function<void()> handler) { m_events.add_control(fd, std::move(handler)); }

void Machine::remove_control_fd(int fd) { m_events.remove(fd); }

// immediate_exit covers a vCPU about to enter KVM_RUN, the signal one inside
// (halted, waiting for an interrupt, possibly for ever).
void Machine::kick_vcpus() {
    for (size_t i = 0; i < m_threads.size(); ++i) {
        m_runners[i]->request_immediate_exit();
        pthread_kill(m_threads[i].native_handle(), vcpu_kick_signal());
    }
}

void Machine::stop_vcpu_threads() {
    if (m_threads.empty()) return;
    if (!m_stop.stopping()) m_stop.stop(StopReason::Signal, "keel is shutting down");
    m_pause.release_all();
    kick_vcpus();
    for (auto& t : m_threads) t.join();
    m_threads.clear();
}

void Machine::collect_stats() {
    m_stats.stop_reason = stop_reason_name(m_stop.reason());
    m_stats.stop_detail = m_stop.detail();
    // The rest (KVM's stats fds, /proc/self/smaps, every device) is read only
    // for a user who asked: a plain run ends without that work or its syscalls.
    if (!m_config.stats_requested()) return;
    for (const auto& r : m_runners) {
        m_stats.exits.merge(r->counters());
        m_stats.vcpus_at_stop.push_back(r->state_at_stop());
        for (const auto& [name, value] : r->kernel_stats()) {
            m_stats.kvm_counters[name] += value;
        }
    }
    for (const auto& e : m_pio.entries()) m_stats.pio_devices.push_back({e.base, e.length, e.name});
    for (const auto& e : m_mmio.entries()) m_stats.mmio_devices.push_back({e.base, e.length, e.name});
    m_stats.memory = measure_own_memory();
    collect_device_stats();
}

// keel's memory by part, guest RAM told apart by the host ranges it is mapped at.
MemoryBreakdown Machine::measure_own_memory() const {
    std::vector<AddressRange> guest_ram;
    for (const auto& region : m_memory->regions()) {
        const auto host = reinterpret_cast<uint64_t>(region.host);
        guest_ram.emplace_back(host, host + region.size);
    }
    return measure_memory(guest_ram);
}

int Machine::exit_status() const {
    switch (m_stop.reason()) {
        case StopReason::PowerOff:
        case StopReason::Reboot:
        case StopReason::ConsoleQuit:
            return 0;
        case StopReason::TripleFault:
            // Some kernels reboot by triple-faulting; count it as a reboot.
            return 0;
        case StopReason::Signal: return 128 + (m_stop.signal_number() != 0 ? m_stop.signal_number() : SIGTERM);
        case StopReason::Error:
        case StopReason::None: return 1;
    }
    return 1;
}

}  // namespace keel
