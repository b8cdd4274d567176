#pragma once

// EventRegistry for device tests: records fd -> handler and runs handlers on
// demand, on the test's thread, when their fd is readable (level-triggered,
// like keel's epoll loop).

#include <poll.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "bus/event_registry.h"
#include "common/error.h"

namespace keel::test {

class FakeEventRegistry final : public EventRegistry {
public:
    void add(int fd, Handler handler) override {
        std::lock_guard lock(m_mutex);
        if (m_handlers.contains(fd)) throw Error("event registry: fd " + std::to_string(fd) + " added twice");
        m_handlers.emplace(fd, std::move(handler));
        ++m_adds;
    }
    void remove(int fd) override {
        std::lock_guard lock(m_mutex);
        m_handlers.erase(fd);
        ++m_removes;
    }

    [[nodiscard]] bool contains(int fd) const {
        std::lock_guard lock(m_mutex);
        return m_handlers.contains(fd);
    }
    [[nodiscard]] size_t size() const {
        std::lock_guard lock(m_mutex);
        return m_handlers.size();
    }
    [[nodiscard]] int adds() const {
        std::lock_guard lock(m_mutex);
        return m_adds;
    }
    [[nodiscard]] int removes() const {
        std::lock_guard lock(m_mutex);
        return m_removes;
    }

    // Polls every registered fd (zero timeout) and runs the handler of each
    // readable one; repeats until a round runs nothing, at most `max_rounds`
    // rounds (a handler that never consumes its fd must not hang the test).
    // Returns how many handler calls ran. Handlers may add or remove fds.
    int run_ready(int max_rounds = 100) {
        int calls = 0;
        for (int round = 0; round < max_rounds; ++round) {
            int ran = 0;
            for (const int fd : fds()) {
                if (!readable(fd)) continue;
                Handler handler;
                {
                    std::lock_guard lock(m_mutex);
                    const auto it = m_handlers.find(fd);
                    if (it == m_handlers.end()) continue;  // removed by an earlier handler
                    handler = it->second;                  // a copy: it may remove itself
                }
                handler();
                ++ran;
            }
            calls += ran;
            if (ran == 0) break;
        }
        return calls;
    }

    // Runs the handler of `fd` once, readable or not (e.g. to test a
    // spurious wake-up). False when fd is not registered.
    bool run(int fd) {
        Handler handler;
        {
            std::lock_guard lock(m_mutex);
            const auto it = m_handlers.find(fd);
            if (it == m_handlers.end()) return false;
            handler = it->second;
        }
        handler();
        return true;
    }

private:
    [[nodiscard]] std::vector<int> fds() const {
        std::lock_guard lock(m_mutex);
        std::vector<int> out;
        for (const auto& entry : m_handlers) out.push_back(entry.first);
        return out;
    }
    static bool readable(int fd) {
        pollfd p{fd, POLLIN, 0};
        return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLERR | POLLHUP)) != 0;
    }

    mutable std::mutex m_mutex;
    std::map<int, Handler> m_handlers;
    int m_adds = 0;
    int m_removes = 0;
};

}  // namespace keel::test
