#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>

namespace keel {

// Holds every vCPU thread outside KVM_RUN while the VM is paused (PATCH /vm
// {"state": "Paused"}), and lets them go on resume or stop. The VMM thread
// requests the pause, kicks each vCPU out of KVM_RUN (immediate_exit and the
// kick signal, as for a stop), then waits until all of them have parked: only
// then is the guest really not running. Devices keep being served meanwhile.
class PauseGate {
public:
    explicit PauseGate(size_t vcpus) : m_vcpus(vcpus) {}

    // vCPU thread, before each KVM_RUN: returns at once unless a pause is
    // requested; otherwise runs `on_park` (KVM_KVMCLOCK_CTRL: the guest's
    // watchdogs must not count the pause as a lockup) and waits for resume()
    // or release_all(). Returns true if it parked.
    bool park_if_paused(const std::function<void()>& on_park);

    // VMM thread.
    void request_pause();
    // True once every vCPU has parked; false if `timeout` passed first.
    [[nodiscard]] bool wait_until_parked(std::chrono::milliseconds timeout);
    void resume();
    // The VM is stopping: every parked vCPU returns and no more park.
    void release_all();

    [[nodiscard]] bool pause_requested() const;

private:
    const size_t m_vcpus;
    mutable std::mutex m_lock;
    std::condition_variable m_changed;
    bool m_pause = false;
    bool m_released = false;
    size_t m_parked = 0;
    uint64_t m_generation = 0;  // bumped by resume(): a vCPU leaves the park it entered
};

}  // namespace keel
