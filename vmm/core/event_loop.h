#pragma once

#include <cstdint>
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

    void run(StopController& stop);

    // Handlers run so far (for --stats: how busy device I/O kept the loop).
    [[nodiscard]] uint64_t dispatched() const { return m_dispatched; }

private:
    struct Subscription {
        uint32_t generation = 0;
        std::shared_ptr<Handler> handler;
    };
    [[nodiscard]] std::shared_ptr<Handler> handler_for(uint64_t token) const;

    UniqueFd m_epoll;
    mutable std::mutex m_lock;  // add()/remove() come from vCPU threads too
    // epoll_event.data carries (generation << 32 | fd): an event still queued
    // for an fd number that was removed and reused reaches nobody.
    std::unordered_map<int, Subscription> m_subscriptions;
    uint32_t m_next_generation = 1;
    uint64_t m_dispatched = 0;
};

}  // namespace keel
