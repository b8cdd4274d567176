#include "core/vcpu_runner.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <span>

#include "common/error.h"
#include "core/boot_clock.h"
#include "core/memory_overhead.h"
#include "kvm/kvm_stats.h"

namespace keel {

namespace {
void ignore_kick(int) {}
}  // namespace

int vcpu_kick_signal() { return SIGRTMIN; }

void install_vcpu_kick_signal() {
    struct sigaction action {};
    action.sa_handler = ignore_kick;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    sigaction(vcpu_kick_signal(), &action, nullptr);
}

VcpuRunner::VcpuRunner(Vcpu vcpu, const Bus& pio, const Bus& mmio, StopSink& stop_sink, PauseGate& pause,
                       std::atomic<uint64_t>& first_run_ns, bool record_state_at_stop)
    : m_vcpu(std::move(vcpu)),
      m_pio(pio),
      m_mmio(mmio),
      m_stop(stop_sink),
      m_pause(pause),
      m_first_run_ns(first_run_ns),
      m_record_state_at_stop(record_state_at_stop) {}

void VcpuRunner::run() {
    run_until_stopped();
    if (!m_record_state_at_stop) return;
    m_kernel_stats = read_kvm_stats(m_vcpu.fd());
    try {
        const kvm_regs regs = m_vcpu.get_regs();
        const kvm_sregs sregs = m_vcpu.get_sregs();
        constexpr uint64_t kInterruptFlag = 1U << 9;
        char text[160];
        std::snprintf(text, sizeof text, "rip %#llx rflags %#llx (interrupts %s) %s", static_cast<unsigned long long>(regs.rip),
                      static_cast<unsigned long long>(regs.rflags), (regs.rflags & kInterruptFlag) != 0 ? "on" : "off",
                      (sregs.cs.selector & 3) == 0 ? "kernel" : "user");
        m_state_at_stop = text;
    } catch (const Error&) {
        m_state_at_stop.clear();
    }
}

void VcpuRunner::run_until_stopped() {
    register_current_thread_stack();
    uint64_t expected = 0;
    m_first_run_ns.compare_exchange_strong(expected, monotonic_ns());
    while (!m_stop.stopping()) {
        // A pause parks this thread here, between exits, never inside KVM_RUN.
        if (m_pause.park_if_paused([this] { (void)m_vcpu.kvmclock_ctrl(); })) continue;
        const int err = m_vcpu.run();
        if (err == EINTR || err == EAGAIN) {
            m_vcpu.run_state().immediate_exit = 0;
            m_counters.count(KVM_EXIT_INTR);
            continue;
        }
        if (err != 0) {
            LiveVcpuCounts::bump(m_live.failures);
            m_stop.stop(StopReason::Error, "KVM_RUN on vCPU " + std::to_string(index()) + ": " + std::strerror(err));
            return;
        }
        if (handle_exit() == Next::Stop) return;
    }
}

VcpuRunner::Next VcpuRunner::handle_exit() {
    const kvm_run& run = m_vcpu.run_state();
    m_counters.count(run.exit_reason);
    LiveVcpuCounts::bump(m_live.exits);
    switch (run.exit_reason) {
        case KVM_EXIT_IO: return handle_io();
        case KVM_EXIT_MMIO: return handle_mmio();
        case KVM_EXIT_SYSTEM_EVENT: return handle_system_event();
        case KVM_EXIT_SHUTDOWN:
            // A triple fault: what a PC does on a failed boot and what some
            // kernels use as their last-resort reboot. Either way the VM is over.
            m_stop.stop(StopReason::TripleFault, "vCPU " + std::to_string(index()) + " triple-faulted");
            return Next::Stop;
        case KVM_EXIT_HLT:
            // With the in-kernel LAPIC, HLT never exits unless the VM is dead.
            m_stop.stop(StopReason::PowerOff, "vCPU halted");
            return Next::Stop;
        case KVM_EXIT_INTR: return Next::Continue;
        case KVM_EXIT_FAIL_ENTRY: LiveVcpuCounts::bump(m_live.failures); return handle_fail_entry();
        case KVM_EXIT_INTERNAL_ERROR: LiveVcpuCounts::bump(m_live.failures); return handle_internal_error();
        default:
            LiveVcpuCounts::bump(m_live.failures);
            m_stop.stop(StopReason::Error, "vCPU " + std::to_string(index()) + ": unexpected KVM exit " +
                                               exit_reason_name(run.exit_reason));
            return Next::Stop;
    }
}

VcpuRunner::Next VcpuRunner::handle_io() {
    kvm_run& run = m_vcpu.run_state();
    const auto& io = run.io;
    // KVM places the data inside the kvm_run mapping; `count` > 1 for string
    // instructions (rep ins/outs), each element `size` bytes.
    auto* data = reinterpret_cast<uint8_t*>(&run) + io.data_offset;
    m_counters.count_address(m_counters.pio_by_port, io.port);
    LiveVcpuCounts::bump(io.direction == KVM_EXIT_IO_OUT ? m_live.io_out : m_live.io_in);
    for (uint32_t i = 0; i < io.count; ++i) {
        std::span<uint8_t> element(data + static_cast<size_t>(i) * io.size, io.size);
        if (io.direction == KVM_EXIT_IO_OUT) {
            (void)m_pio.write(io.port, element);
        } else {
            (void)m_pio.read(io.port, element);
        }
    }
    return Next::Continue;
}

VcpuRunner::Next VcpuRunner::handle_mmio() {
    auto& mmio = m_vcpu.run_state().mmio;
    m_counters.count_address(m_counters.mmio_by_address, mmio.phys_addr);
    LiveVcpuCounts::bump(mmio.is_write != 0 ? m_live.mmio_write : m_live.mmio_read);
    const size_t len = std::min<size_t>(mmio.len, sizeof mmio.data);
    if (mmio.is_write != 0) {
        (void)m_mmio.write(mmio.phys_addr, std::span<const uint8_t>(mmio.data, len));
    } else {
        (void)m_mmio.read(mmio.phys_addr, std::span<uint8_t>(mmio.data, len));
    }
    return Next::Continue;
}

VcpuRunner::Next VcpuRunner::handle_system_event() {
    const auto& event = m_vcpu.run_state().system_event;
    switch (event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN: m_stop.stop(StopReason::PowerOff, "system event: shutdown"); break;
        case KVM_SYSTEM_EVENT_RESET: m_stop.stop(StopReason::Reboot, "system event: reset"); break;
        default:
            m_stop.stop(StopReason::Error, "guest crashed (system event " + std::to_string(event.type) + ")");
            break;
    }
    return Next::Stop;
}

VcpuRunner::Next VcpuRunner::handle_fail_entry() {
    const auto reason = m_vcpu.run_state().fail_entry.hardware_entry_failure_reason;
    m_stop.stop(StopReason::Error, "vCPU " + std::to_string(index()) +
                                       ": KVM could not enter the guest (hardware reason " + std::to_string(reason) +
                                       ")");
    return Next::Stop;
}

VcpuRunner::Next VcpuRunner::handle_internal_error() {
    const auto suberror = m_vcpu.run_state().internal.suberror;
    std::string detail = "vCPU " + std::to_string(index()) + ": KVM internal error " + std::to_string(suberror);
    if (suberror == KVM_INTERNAL_ERROR_EMULATION) detail += " (an instruction KVM could not emulate)";
    try {
        const auto regs = m_vcpu.get_regs();
        char rip[32];
        std::snprintf(rip, sizeof rip, " at rip %#llx", static_cast<unsigned long long>(regs.rip));
        detail += rip;
    } catch (...) {
        // The registers only decorate the message.
    }
    m_stop.stop(StopReason::Error, detail);
    return Next::Stop;
}

}  // namespace keel
