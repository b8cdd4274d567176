#pragma once

#include "bus/bus_device.h"
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

}  // namespace keel
