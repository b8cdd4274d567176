#pragma once

#include <cstdint>
#include <functional>
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

// An interrupt towards the guest (an irqfd or KVM_IRQ_LINE pulse in keel, a
// counter in tests). Devices never see KVM.
//
// trigger() makes an edge, or raises a level-triggered line. A level line
// stays high until the guest's end of interrupt; the platform then asks the
// device's level source whether the line is still asserted and raises it
// again if so. A device whose interrupt is a level (virtio-mmio's
// InterruptStatus) gives its source once, before the guest runs, and calls
// trigger() when the level goes from low to high. Edge lines ignore it.
class InterruptLine {
public:
    using LevelSource = std::function<bool()>;
    virtual ~InterruptLine() = default;
    virtual void trigger() = 0;
    virtual void set_level_source(LevelSource /*asserted*/) {}
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
