#pragma once

#include <functional>
#include <utility>
#include <vector>

namespace keel {

// The event loop as devices see it: "call me when this fd is readable".
// keel's EventLoop implements it over epoll; unit tests use a fake that runs
// handlers on demand. Devices never see epoll or threads.
//
// Thread safety: add() and remove() may be called from any thread (a vCPU
// thread activates and resets virtio devices). remove() does not wait for a
// handler already running on the loop thread, and such a handler may run once
// more after remove() returned, so handlers re-check their device's state
// under the device's own lock.
class EventRegistry {
public:
    using Handler = std::function<void()>;
    virtual ~EventRegistry() = default;

    // Level-triggered: `handler` runs on the event-loop thread while fd is
    // readable, so it must consume what made it readable (e.g. read the
    // eventfd). One handler per fd; adding an fd twice throws keel::Error.
    virtual void add(int fd, Handler handler) = 0;
    virtual void remove(int fd) = 0;
};

using EventHandlers = std::vector<std::pair<int, EventRegistry::Handler>>;

// Subscribes every (fd, handler) of a device activation, or none: when one
// add() throws, the fds already added are removed again and the exception
// propagates. Returns the fds added, in order (what the device removes at
// reset). The handlers are moved from.
[[nodiscard]] inline std::vector<int> add_all_or_none(EventRegistry& events, EventHandlers& handlers) {
    std::vector<int> added;
    added.reserve(handlers.size());
    try {
        for (auto& [fd, handler] : handlers) {
            events.add(fd, std::move(handler));
            added.push_back(fd);
        }
    } catch (...) {
        for (const int fd : added) events.remove(fd);
        throw;
    }
    return added;
}

}  // namespace keel
