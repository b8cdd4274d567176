#pragma once

#include <atomic>
#include <mutex>
#include <string>

#include "common/fd.h"
#include "core/vcpu_runner.h"

namespace keel {

// Records why the VM stops (first caller wins) and wakes the main thread
// through an eventfd, from any thread.
class StopController final : public StopSink {
public:
    StopController();

    void stop(StopReason reason, const std::string& detail) override;
    [[nodiscard]] bool stopping() const override { return m_reason.load(std::memory_order_acquire) != StopReason::None; }

    [[nodiscard]] StopReason reason() const { return m_reason.load(std::memory_order_acquire); }
    [[nodiscard]] std::string detail() const;
    [[nodiscard]] int wake_fd() const { return m_wake.get(); }
    // The signal behind StopReason::Signal, for the 128 + N exit status.
    void stop_by_signal(int signal_number, const std::string& detail);
    [[nodiscard]] int signal_number() const { return m_signal.load(std::memory_order_acquire); }

private:
    std::atomic<StopReason> m_reason{StopReason::None};
    std::atomic<int> m_signal{0};
    mutable std::mutex m_detail_mutex;
    std::string m_detail;
    UniqueFd m_wake;
};

[[nodiscard]] const char* stop_reason_name(StopReason reason);

}  // namespace keel
