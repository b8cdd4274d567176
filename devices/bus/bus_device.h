#pragma once

#include <cstdint>
#include <span>

namespace keel {

// One device model behind the bus. Offsets are relative to the range the
// device was inserted at; data.size() is the access width (1, 2, 4 or 8, or
// larger for MMIO string operations). Called on vCPU threads: a device that is
// also touched by the event loop guards its own state.
class BusDevice {
public:
    virtual ~BusDevice() = default;
    virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

// Edge-triggered interrupt towards the guest (an irqfd or KVM_IRQ_LINE pulse
// in keel, a counter in tests). Devices never see KVM.
class InterruptLine {
public:
    virtual ~InterruptLine() = default;
    virtual void trigger() = 0;
};

// What a guest can ask of the machine itself: ACPI S5 or the i8042 reset
// line / ACPI reset register.
enum class VmExitRequest : uint8_t { PowerOff, Reboot };

// Implemented by the VM: stops every vCPU and makes keel exit with status 0.
// Called on a vCPU thread, possibly by several devices and several vCPUs at
// once: it must be idempotent and must not wait for the calling vCPU to stop.
class VmLifecycle {
public:
    virtual ~VmLifecycle() = default;
    virtual void request_exit(VmExitRequest request) = 0;
};

}  // namespace keel
