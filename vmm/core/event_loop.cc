#include "core/event_loop.h"

#include <sys/epoll.h>

#include <cerrno>
#include <string>

#include "common/error.h"

namespace keel {

namespace {

constexpr int kMaxEventsPerWait = 32;

uint64_t token_for(int fd, uint32_t generation) {
    return (static_cast<uint64_t>(generation) << 32) | static_cast<uint32_t>(fd);
}

}  // namespace

EventLoop::EventLoop() : m_epoll(epoll_create1(EPOLL_CLOEXEC)) {
    if (!m_epoll.valid()) throw_errno("epoll_create1");
}

void EventLoop::add(int fd, Handler handler) { subscribe(fd, std::move(handler), false); }

void EventLoop::add_control(int fd, Handler handler) { subscribe(fd, std::move(handler), true); }

void EventLoop::subscribe(int fd, Handler handler, bool control) {
    std::lock_guard guard(m_lock);
    if (m_subscriptions.contains(fd)) throw Error("internal: fd " + std::to_string(fd) + " is already watched");
    const uint32_t generation = m_next_generation++;
    if (control || !m_devices_paused) watch(fd, generation);
    m_subscriptions[fd] = Subscription{generation, std::make_shared<Handler>(std::move(handler)), control};
}

void EventLoop::watch(int fd, uint32_t generation) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = token_for(fd, generation);
    if (epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, fd, &ev) != 0) throw_errno("epoll_ctl(ADD, fd " + std::to_string(fd) + ")");
}

void EventLoop::remove(int fd) {
    std::lock_guard guard(m_lock);
    const auto it = m_subscriptions.find(fd);
    if (it == m_subscriptions.end()) return;
    const bool watched = it->second.control || !m_devices_paused;
    m_subscriptions.erase(it);
    // Fails only when fd was closed already, which removed it from the epoll set.
    if (watched) (void)epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
}

void EventLoop::pause_devices() {
    std::lock_guard guard(m_lock);
    if (m_devices_paused) return;
    m_devices_paused = true;
    for (const auto& [fd, subscription] : m_subscriptions) {
        if (!subscription.control) (void)epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
    }
}

void EventLoop::resume_devices() {
    std::lock_guard guard(m_lock);
    if (!m_devices_paused) return;
    m_devices_paused = false;
    for (const auto& [fd, subscription] : m_subscriptions) {
        if (!subscription.control) watch(fd, subscription.generation);
    }
}

std::shared_ptr<EventRegistry::Handler> EventLoop::handler_for(uint64_t token) const {
    const auto fd = static_cast<int>(token & 0xffff'ffffU);
    const auto generation = static_cast<uint32_t>(token >> 32);
    std::lock_guard guard(m_lock);
    const auto it = m_subscriptions.find(fd);
    if (it == m_subscriptions.end() || it->second.generation != generation) return nullptr;
    // A device event fetched in the same batch as the request that paused the
    // VM waits: level-triggered, it is reported again after the resume.
    if (m_devices_paused && !it->second.control) return nullptr;
    return it->second.handler;
}

void EventLoop::run(StopController& stop) {
    run_until([&stop] { return stop.stopping(); });
}

void EventLoop::run_until(const std::function<bool()>& done) {
    while (!done()) {
        epoll_event events[kMaxEventsPerWait];
        const int n = epoll_wait(m_epoll.get(), events, kMaxEventsPerWait, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("epoll_wait");
        }
        for (int i = 0; i < n && !done(); ++i) {
            // A copy of the handler: remove() from inside a handler (or from a
            // vCPU thread) must not destroy the function while it runs.
            const auto handler = handler_for(events[i].data.u64);
            if (!handler) continue;
            ++m_dispatched;
            (*handler)();
        }
    }
}

}  // namespace keel
