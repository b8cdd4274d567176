#pragma once

// VirtioNotifier for device tests: counts what a device asked its transport
// to tell the driver. Thread-safe, so devices that complete I/O elsewhere can
// use it too.

#include <cstdint>
#include <map>
#include <mutex>

#include "virtio/virtio_device.h"

namespace keel::test {

class FakeNotifier final : public virtio::VirtioNotifier {
public:
    void signal_used_queue(uint16_t index) override {
        std::lock_guard lock(m_mutex);
        ++m_used[index];
        ++m_used_total;
    }
    void signal_config_change() override {
        std::lock_guard lock(m_mutex);
        ++m_config;
    }
    void set_needs_reset() override {
        std::lock_guard lock(m_mutex);
        ++m_needs_reset;
    }

    // Used-buffer notifications for queue `index`, or for all queues.
    [[nodiscard]] int used_signals(uint16_t index) const {
        std::lock_guard lock(m_mutex);
        const auto it = m_used.find(index);
        return it == m_used.end() ? 0 : it->second;
    }
    [[nodiscard]] int used_signals() const {
        std::lock_guard lock(m_mutex);
        return m_used_total;
    }
    [[nodiscard]] int config_signals() const {
        std::lock_guard lock(m_mutex);
        return m_config;
    }
    [[nodiscard]] bool needs_reset() const {
        std::lock_guard lock(m_mutex);
        return m_needs_reset > 0;
    }
    [[nodiscard]] int needs_reset_calls() const {
        std::lock_guard lock(m_mutex);
        return m_needs_reset;
    }
    void clear() {
        std::lock_guard lock(m_mutex);
        m_used.clear();
        m_used_total = 0;
        m_config = 0;
        m_needs_reset = 0;
    }

private:
    mutable std::mutex m_mutex;
    std::map<uint16_t, int> m_used;
    int m_used_total = 0;
    int m_config = 0;
    int m_needs_reset = 0;
};

}  // namespace keel::test
