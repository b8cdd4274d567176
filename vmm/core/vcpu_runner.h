#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>

#include "bus/bus.h"
#include "core/exit_counters.h"
#include "core/live_metrics.h"
#include "core/pause_gate.h"
#include "kvm/vcpu.h"

namespace keel {

// Why the VM stopped. The first reason reported wins.
enum class StopReason { None, PowerOff, Reboot, TripleFault, ConsoleQuit, Signal, Error };

class StopSink {
public:
    virtual ~StopSink() = default;
    // Thread-safe; `detail` explains errors.
    virtual void stop(StopReason reason, const std::string& detail) = 0;
    [[nodiscard]] virtual bool stopping() const = 0;
};

// Runs one vCPU: KVM_RUN, then hands each exit to one small handler. Device
// work reaches the buses only; nothing else happens on this thread.
class VcpuRunner {
public:
    // `record_state_at_stop`: read KVM's counters and the registers when the
    // VM stops (for --stats); without it the thread ends without those syscalls.
    VcpuRunner(Vcpu vcpu, const Bus& pio, const Bus& mmio, StopSink& stop_sink, PauseGate& pause,
               std::atomic<uint64_t>& first_run_ns, bool record_state_at_stop);

    void run();  // thread body; returns when the VM stops
    // Makes a running or about-to-run KVM_RUN return (from any thread); the
    // caller then signals the thread to interrupt a KVM_RUN already in progress.
    void request_immediate_exit() const { m_vcpu.run_state().immediate_exit = 1; }

    [[nodiscard]] const ExitCounters& counters() const { return m_counters; }
    // Readable from any thread while the vCPU runs.
    [[nodiscard]] const LiveVcpuCounts& live_counts() const { return m_live; }
    // KVM's own counters for this vCPU (all exits, including those handled in
    // the kernel), read when run() returns.
    [[nodiscard]] const std::map<std::string, uint64_t>& kernel_stats() const { return m_kernel_stats; }
    // Where the guest was when this vCPU stopped ("rip 0x... rflags 0x...
    // (interrupts off) kernel"), read when run() returns: what a hung guest
    // was doing. Empty when the registers could not be read.
    [[nodiscard]] const std::string& state_at_stop() const { return m_state_at_stop; }
    [[nodiscard]] uint32_t index() const { return m_vcpu.index(); }

private:
    enum class Next { Continue, Stop };

    void run_until_stopped();

    Next handle_exit();
    Next handle_io();
    Next handle_mmio();
    Next handle_system_event();
    Next handle_internal_error();
    Next handle_fail_entry();

    Vcpu m_vcpu;
    const Bus& m_pio;
    const Bus& m_mmio;
    StopSink& m_stop;
    PauseGate& m_pause;
    std::atomic<uint64_t>& m_first_run_ns;
    bool m_record_state_at_stop;
    ExitCounters m_counters;
    LiveVcpuCounts m_live;
    std::map<std::string, uint64_t> m_kernel_stats;
    std::string m_state_at_stop;
};

// Installs the (empty) handler of the signal used to kick vCPUs out of
// KVM_RUN; call once before starting vCPU threads.
void install_vcpu_kick_signal();
int vcpu_kick_signal();

}  // namespace keel
