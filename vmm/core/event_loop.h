#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "bus/event_registry.h"
#include "common/fd.h"
#include "core/stop_controller.h"

namespace keel {

// The main thread's loop while the VM runs: every fd a device, the console or
// the stop machinery subscribes through EventRegistry, dispatched from one
// epoll. run() returns when the StopController says the VM is stopping.
class EventLoop final : public EventRegistry {
public:
    EventLoop();

    void add(int fd, Handler handler) override;
    void remove(int fd) override;
    // The machinery that must keep running while the VM is paused (the stop
    // eventfd, termination signals, the API's requests). remove() ends it.
    void add_control(int fd, Handler handler);

    // A paused VM processes no device I/O: every fd added with add() leaves
    // the epoll set (a TAP's frames wait in the kernel, ioeventfds count up)
    // until resume_devices(); fds added meanwhile join it then. Idempotent.
    void pause_devices();
    void resume_devices();

    void run(StopController& stop);
    // Dispatches until `done` (checked after every handler) says so.
    void run_until(const std::function<bool()>& done);

    // Handlers run so far (for --stats: how busy device I/O kept the loop).
    [[nodiscard]] uint64_t dispatched() const { return m_dispatched; }

private:
    struct Subscription {
        uint32_t generation = 0;
        std::shared_ptr<Handler> handler;
        bool control = false;
    };
    [[nodiscard]] std::shared_ptr<Handler> handler_for(uint64_t token) const;
    void subscribe(int fd, Handler handler, bool control);
    void watch(int fd, uint32_t generation);  // m_lock held

    UniqueFd m_epoll;
    mutable std::mutex m_lock;  // add()/remove() come from vCPU threads too
    // epoll_event.data carries (generation << 32 | fd): an event still queued
    // for an fd number that was removed and reused reaches nobody.
    std::unordered_map<int, Subscription> m_subscriptions;
    uint32_t m_next_generation = 1;
    bool m_devices_paused = false;
    uint64_t m_dispatched = 0;
};

}  // namespace keel
