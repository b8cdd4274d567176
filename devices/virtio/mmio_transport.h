#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bus/bus_device.h"
#include "bus/event_registry.h"
#include "memory/gpa.h"
#include "memory/guest_memory.h"
#include "virtio/io_event_spec.h"
#include "virtio/mmio_registers.h"
#include "virtio/transport_core.h"
#include "virtio/virtio_device.h"

namespace keel::virtio {

// Where the VM builder put one virtio-mmio window: its guest-physical base
// (kMmioWindowSize bytes) and the GSI its InterruptLine raises.
struct MmioSlot {
    Gpa base;
    uint32_t irq = 0;
};

// The kernel command-line parameter that tells Linux about one virtio-mmio
// device, "virtio_mmio.device=<size>@<base>:<irq>" (drivers/virtio/
// virtio_mmio.c: size by memparse, so "4K"; base by %lli, so "0x..."; irq
// decimal), e.g. "virtio_mmio.device=4K@0xd0001000:5".
[[nodiscard]] std::string virtio_mmio_cmdline_parameter(Gpa base, uint64_t size, uint32_t irq);

// virtio-mmio, version 2 (virtio 1.2 §4.2.2): the register file of
// mmio_registers.h over a TransportCore. Insert it into the MMIO bus at
// slot.base for kMmioWindowSize bytes.
//
// Accesses: registers take aligned 32-bit accesses only; the device config
// space (0x100 and up) takes naturally aligned 8/16/32-bit accesses and
// 64-bit ones as two 32-bit halves (§4.2.2.2). Anything else reads 0, is
// ignored when written, counted ("bad_accesses") and logged once.
//
// Interrupts: one InterruptLine whose level is "InterruptStatus is not 0"
// (the transport is its level source). It is triggered by a used-buffer or
// configuration-change notification whose InterruptStatus bit (0 / 1,
// VIRTIO_MMIO_INT_VRING / _CONFIG) was clear; the bits stay set until the
// driver acks them, and a notification that finds its bit still set is
// counted in "interrupts_merged" instead (see raise()). keel wires the line
// as a level (resampled irqfd) when ACPI describes the device, as an edge
// for devices on the kernel command line.
class VirtioMmioTransport final : public BusDevice, public VirtioNotifier {
public:
    // Throws keel::Error (see TransportCore) for an unusable device.
    VirtioMmioTransport(std::shared_ptr<VirtioDevice> device, const GuestMemory& memory, EventRegistry& events,
                        std::shared_ptr<InterruptLine> irq, MmioSlot slot);
    ~VirtioMmioTransport() override;
    VirtioMmioTransport(const VirtioMmioTransport&) = delete;
    VirtioMmioTransport& operator=(const VirtioMmioTransport&) = delete;

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // VirtioNotifier, called by the device (event-loop thread). Lock-free.
    void signal_used_queue(uint16_t index) override;
    void signal_config_change() override;
    void set_needs_reset() override;

    // One KVM ioeventfd per queue: a 4-byte write of the queue index to
    // QueueNotify (datamatch = index) signals that queue's kick fd.
    [[nodiscard]] std::vector<IoEventSpec> ioevents() const;
    // This device's "virtio_mmio.device=..." parameter.
    [[nodiscard]] std::string kernel_cmdline_parameter() const;
    [[nodiscard]] MmioSlot slot() const { return m_slot; }

    // The device's and the transport's counters, plus "bad_accesses" and
    // "interrupts_merged".
    [[nodiscard]] std::vector<DeviceCounter> counters() const;
    [[nodiscard]] std::vector<std::string> queue_states() const { return m_core.queue_states(); }
    [[nodiscard]] const TransportCore& core() const { return m_core; }
    [[nodiscard]] uint32_t interrupt_status() const { return m_interrupt_status.load(std::memory_order_acquire); }

private:
    [[nodiscard]] uint32_t read_register(MmioReg reg) const;
    void write_register(MmioReg reg, uint32_t value);
    void read_config(uint64_t offset, std::span<uint8_t> data) const;
    void write_config(uint64_t offset, std::span<const uint8_t> data);
    void raise(uint32_t bits);
    void note_bad_access(uint64_t offset, size_t width, const char* access) const;

    std::shared_ptr<InterruptLine> m_irq;
    MmioSlot m_slot;
    TransportCore m_core;
    std::atomic<uint32_t> m_interrupt_status{0};
    mutable std::atomic<uint64_t> m_bad_accesses{0};
    std::atomic<uint64_t> m_merged_interrupts{0};
};

}  // namespace keel::virtio
