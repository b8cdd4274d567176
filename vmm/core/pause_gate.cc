#include "core/pause_gate.h"

namespace keel {

bool PauseGate::park_if_paused(const std::function<void()>& on_park) {
    std::unique_lock lock(m_lock);
    if (!m_pause || m_released) return false;
    lock.unlock();
    if (on_park) on_park();
    lock.lock();
    // resume() or a stop may have come while on_park ran.
    if (!m_pause || m_released) return false;
    const uint64_t generation = m_generation;
    ++m_parked;
    m_changed.notify_all();
    m_changed.wait(lock, [&] { return m_released || m_generation != generation; });
    --m_parked;
    return true;
}

void PauseGate::request_pause() {
    const std::lock_guard lock(m_lock);
    m_pause = true;
}

bool PauseGate::wait_until_parked(std::chrono::milliseconds timeout) {
    std::unique_lock lock(m_lock);
    return m_changed.wait_for(lock, timeout, [&] { return m_released || m_parked == m_vcpus; }) && !m_released;
}

void PauseGate::resume() {
    const std::lock_guard lock(m_lock);
    m_pause = false;
    ++m_generation;
    m_changed.notify_all();
}

void PauseGate::release_all() {
    const std::lock_guard lock(m_lock);
    m_released = true;
    m_changed.notify_all();
}

bool PauseGate::pause_requested() const {
    const std::lock_guard lock(m_lock);
    return m_pause;
}

}  // namespace keel
