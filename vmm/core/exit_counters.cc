#include "core/exit_counters.h"

#include "common/kvm_uapi.h"

#include <numeric>

namespace keel {

void ExitCounters::merge(const ExitCounters& other) {
    for (size_t i = 0; i < kReasons; ++i) by_reason[i] += other.by_reason[i];
    for (const auto& [port, n] : other.pio_by_port) pio_by_port[port] += n;
    for (const auto& [addr, n] : other.mmio_by_address) mmio_by_address[addr] += n;
    other_addresses += other.other_addresses;
}

uint64_t ExitCounters::total() const {
    return std::accumulate(by_reason.begin(), by_reason.end(), uint64_t{0});
}

std::string exit_reason_name(uint32_t reason) {
    switch (reason) {
        case KVM_EXIT_UNKNOWN: return "UNKNOWN";
        case KVM_EXIT_EXCEPTION: return "EXCEPTION";
        case KVM_EXIT_IO: return "IO";
        case KVM_EXIT_HYPERCALL: return "HYPERCALL";
        case KVM_EXIT_DEBUG: return "DEBUG";
        case KVM_EXIT_HLT: return "HLT";
        case KVM_EXIT_MMIO: return "MMIO";
        case KVM_EXIT_IRQ_WINDOW_OPEN: return "IRQ_WINDOW_OPEN";
        case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
        case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
        case KVM_EXIT_INTR: return "INTR";
        case KVM_EXIT_SET_TPR: return "SET_TPR";
        case KVM_EXIT_TPR_ACCESS: return "TPR_ACCESS";
        case KVM_EXIT_NMI: return "NMI";
        case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
        case KVM_EXIT_SYSTEM_EVENT: return "SYSTEM_EVENT";
        case KVM_EXIT_IOAPIC_EOI: return "IOAPIC_EOI";
        case KVM_EXIT_X86_RDMSR: return "X86_RDMSR";
        case KVM_EXIT_X86_WRMSR: return "X86_WRMSR";
        default: return "REASON_" + std::to_string(reason);
    }
}

}  // namespace keel
