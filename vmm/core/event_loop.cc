#include "core/event_loop.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "core/console_escape.h"

namespace keel {

namespace {

enum Token : uint64_t { kWake = 1, kSignal = 2, kConsole = 3, kRxRoom = 4 };

UniqueFd block_termination_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    // Blocked in this thread only; vCPU threads are started with these
    // already blocked (see Machine), so the signalfd sees every one.
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    UniqueFd fd(signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!fd.valid()) throw_errno("signalfd");
    return fd;
}

void watch(int epoll_fd, int fd, uint64_t token) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = token;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) throw_errno("epoll_ctl");
}

}  // namespace

EventLoop::EventLoop(StopController& stop, int console_in_fd, int rx_room_fd, ConsoleSink sink,
                     bool interpret_escapes)
    : m_stop(stop), m_console_fd(console_in_fd), m_rx_room_fd(rx_room_fd), m_sink(std::move(sink)), m_interpret_escapes(interpret_escapes) {}

void EventLoop::run() {
    UniqueFd epoll(epoll_create1(EPOLL_CLOEXEC));
    if (!epoll.valid()) throw_errno("epoll_create1");
    UniqueFd signals = block_termination_signals();
    watch(epoll.get(), m_stop.wake_fd(), kWake);
    watch(epoll.get(), signals.get(), kSignal);
    watch(epoll.get(), m_rx_room_fd, kRxRoom);
    // stdin may be /dev/null or a regular file, which epoll refuses: then
    // there is simply no console input.
    bool console_watched = false;
    if (m_console_fd >= 0) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = kConsole;
        console_watched = epoll_ctl(epoll.get(), EPOLL_CTL_ADD, m_console_fd, &ev) == 0;
    }

    ConsoleEscape escape;
    std::vector<uint8_t> pending;  // accepted from stdin, not yet taken by the UART
    bool console_paused = false;
    while (!m_stop.stopping()) {
        epoll_event events[4];
        const int n = epoll_wait(epoll.get(), events, 4, -1);
        if (n < 0 && errno != EINTR) throw_errno("epoll_wait");

        for (int i = 0; i < n; ++i) {
            switch (events[i].data.u64) {
                case kWake: break;  // the loop condition sees the stop
                case kRxRoom: {
                    uint64_t count = 0;
                    (void)!read(m_rx_room_fd, &count, sizeof count);
                    break;  // pending input is offered again after the events
                }
                case kSignal: {
                    signalfd_siginfo info{};
                    if (read(signals.get(), &info, sizeof info) == sizeof info) {
                        const auto number = static_cast<int>(info.ssi_signo);
                        m_stop.stop_by_signal(number, std::string("received ") + strsignal(number));
                    }
                    break;
                }
                case kConsole: {
                    uint8_t buf[256];
                    const ssize_t got = read(m_console_fd, buf, sizeof buf);
                    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                        // EOF: the guest keeps running without console input.
                        epoll_ctl(epoll.get(), EPOLL_CTL_DEL, m_console_fd, nullptr);
                        console_watched = false;
                        break;
                    }
                    if (got < 0) break;
                    std::span<const uint8_t> input(buf, static_cast<size_t>(got));
                    if (m_interpret_escapes) {
                        auto result = escape.feed(input);
                        if (result.action == ConsoleEscape::Action::Quit) {
                            m_stop.stop(StopReason::ConsoleQuit, "Ctrl-A x");
                            break;
                        }
                        if (result.action == ConsoleEscape::Action::Help) {
                            const std::string help = ConsoleEscape::help_text();
                            (void)!write(STDERR_FILENO, help.data(), help.size());
                        }
                        pending.insert(pending.end(), result.to_guest.begin(), result.to_guest.end());
                    } else {
                        pending.insert(pending.end(), input.begin(), input.end());
                    }
                    const size_t taken = m_sink.deliver(pending);
                    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(taken));
                    if (!pending.empty() && console_watched) {
                        // Stop reading until the guest drains its receive FIFO.
                        epoll_event ev{};
                        ev.events = 0;
                        ev.data.u64 = kConsole;
                        epoll_ctl(epoll.get(), EPOLL_CTL_MOD, m_console_fd, &ev);
                        console_paused = true;
                    }
                    break;
                }
                default: break;
            }
        }
        // Input that waited for room in the UART (kRxRoom) goes first.
        if (!pending.empty()) {
            const size_t taken = m_sink.deliver(pending);
            pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(taken));
        }
        if (console_paused && pending.empty()) {
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u64 = kConsole;
            epoll_ctl(epoll.get(), EPOLL_CTL_MOD, m_console_fd, &ev);
            console_paused = false;
        }
    }
}

}  // namespace keel
