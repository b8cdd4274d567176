#pragma once

#include <atomic>

#include "bus/bus_device.h"
#include "bus/event_registry.h"
#include "common/fd.h"
#include "kvm/vm.h"

namespace keel {

// An edge interrupt into the in-kernel IOAPIC through KVM_IRQFD: trigger()
// is one eventfd write, safe from any thread and never a VM exit.
class IrqfdLine final : public InterruptLine {
public:
    IrqfdLine(const Vm& vm, uint32_t gsi);
    void trigger() override;

private:
    UniqueFd m_eventfd;
};

// A level-triggered interrupt through a resampling KVM_IRQFD: trigger()
// raises the line, KVM holds it high until the guest's end of interrupt,
// then lowers it and signals the resample eventfd, on which this line asks
// the device's level source (on the event-loop thread) and raises the line
// again while the device still asserts it. Nothing is lost between the
// guest's acknowledgement and its EOI: a new cause sets the level while the
// line is high, and the EOI's resample finds it.
class ResampledIrqfdLine final : public InterruptLine {
public:
    ResampledIrqfdLine(const Vm& vm, uint32_t gsi, EventRegistry& events);
    ~ResampledIrqfdLine() override;
    ResampledIrqfdLine(const ResampledIrqfdLine&) = delete;
    ResampledIrqfdLine& operator=(const ResampledIrqfdLine&) = delete;

    void trigger() override;
    void set_level_source(LevelSource asserted) override;

    // End-of-interrupt resamples that found the device still asserting the line.
    [[nodiscard]] uint64_t reasserted() const { return m_reasserted.load(std::memory_order_relaxed); }

private:
    void on_resample();

    UniqueFd m_eventfd;
    UniqueFd m_resample_eventfd;
    EventRegistry& m_events;
    LevelSource m_asserted;
    std::atomic<uint64_t> m_reasserted{0};  // written on the event-loop thread, read for --stats
};

}  // namespace keel
