#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bus/bus_device.h"
#include "bus/event_registry.h"
#include "memory/gpa.h"
#include "memory/guest_memory.h"
#include "pci/msi.h"
#include "pci/msix.h"
#include "pci/pci_config_space.h"
#include "pci/pci_device.h"
#include "virtio/io_event_spec.h"
#include "virtio/pci/common_cfg.h"
#include "virtio/pci/virtio_pci_layout.h"
#include "virtio/transport_core.h"
#include "virtio/virtio_device.h"

namespace keel::virtio {

// virtio over PCI, modern interface only (virtio 1.2 §4.1): a PCI function
// 1af4:1040+type whose vendor capabilities (COMMON_CFG, NOTIFY_CFG, ISR_CFG,
// DEVICE_CFG, PCI_CFG) point into one 64-bit memory BAR laid out by
// VirtioPciLayout, plus an MSI-X capability whose table and PBA sit in the
// same BAR. The status machine, features and queue configuration are the
// TransportCore's; this class is the register layout over it.
//
// Interrupts: MSI-X only (interrupt pin 0, no INTx). Linux's virtio_pci asks
// for MSI-X vectors first (vp_find_vqs: one per queue + config, then one
// shared, then INTx) and gets one per queue + one for configuration changes,
// the table's size. With MSI-X disabled a notification sets the ISR bit and
// is otherwise dropped (counted in "interrupts_dropped"). The MSI-X table is
// PCI function state: a virtio reset (status 0) does not touch it, only the
// virtio vector assignments (config_msix_vector, queue_msix_vector) return
// to NO_VECTOR, and Linux reassigns them after every reset.
//
// Accesses: common configuration fields with their natural width only
// (§4.1.3.1), queue addresses also as one aligned 64-bit access; ISR one
// byte (a read returns and clears it); device configuration 1/2/4/8-byte
// naturally aligned; notify 2- or 4-byte writes at a queue's address.
// Anything else reads 0, is ignored when written, counted ("bad_accesses")
// and logged once.
//
// Threads: BAR accesses arrive on vCPU threads (through the MMIO bus, or the
// PCI_CFG window under PciRoot's config lock), notifications on the event
// loop. The core, the MSI-X state and the atomics here serialise them; lock
// order: PciRoot config lock -> core mutex -> device, and -> MSI-X mutex ->
// vector sink.
class VirtioPciTransport final : public pci::PciDevice,
                                 public VirtioNotifier,
                                 public std::enable_shared_from_this<VirtioPciTransport> {
public:
    // How many MSI-X vectors the transport for `device` has, and so how many
    // the MsiVectorSink must serve: one per queue plus one for config changes.
    [[nodiscard]] static uint16_t msix_vector_count(const VirtioDevice& device);

    // Throws keel::Error for an unusable device (see TransportCore) or one
    // with more queues than MSI-X vectors allow. The transport must be owned
    // by a std::shared_ptr before bar_regions() is called (its BAR device
    // shares that ownership). `msi` delivers the MSI-X vectors (keel's
    // KvmMsiVectors, one KVM MSI route + irqfd per vector).
    VirtioPciTransport(std::shared_ptr<VirtioDevice> device, const GuestMemory& memory, EventRegistry& events,
                       std::shared_ptr<pci::MsiVectorSink> msi, std::string name);

    // --- pci::PciDevice (setup and vCPU threads) ---
    [[nodiscard]] std::string_view name() const override { return m_name; }
    void config_read(uint16_t offset, std::span<uint8_t> data) override;
    void config_write(uint16_t offset, std::span<const uint8_t> data) override;
    [[nodiscard]] std::vector<pci::BarRegion> bar_regions() override;
    void bar_assigned(uint8_t index, uint64_t address) override;

    // --- VirtioNotifier (event loop; lock-free apart from MSI-X) ---
    void signal_used_queue(uint16_t index) override;
    void signal_config_change() override;
    void set_needs_reset() override;

    // BAR accesses, offsets BAR-relative: what the BusDevice returned by
    // bar_regions() forwards (vCPU threads).
    void bar_read(uint64_t offset, std::span<uint8_t> data);
    void bar_write(uint64_t offset, std::span<const uint8_t> data);

    // Once the BAR is assigned: one KVM ioeventfd per queue, a 2-byte write
    // at the queue's notify address, no datamatch (the address names the
    // queue). Empty before bar_assigned(). Notify writes that still reach
    // keel (other widths, the PCI_CFG window) signal the same kick fd.
    [[nodiscard]] std::vector<IoEventSpec> ioevents() const;

    // The device's and the core's counters, plus "bad_accesses" and
    // "interrupts_dropped" (a notification while MSI-X was disabled).
    [[nodiscard]] std::vector<DeviceCounter> counters() const;
    [[nodiscard]] std::vector<std::string> queue_states() const { return m_core.queue_states(); }

    [[nodiscard]] const TransportCore& core() const { return m_core; }
    [[nodiscard]] const VirtioPciLayout& layout() const { return m_layout; }
    [[nodiscard]] std::optional<Gpa> bar_address() const { return m_bar_address; }
    // The ISR without clearing it (tests, stats).
    [[nodiscard]] uint8_t isr() const { return m_isr.load(std::memory_order_acquire); }
    // Offset of the VIRTIO_PCI_CAP_PCI_CFG capability in config space.
    [[nodiscard]] uint8_t pci_cfg_capability() const { return m_pci_cfg_cap; }

private:
    // The BusDevice of BAR 0; shares the transport's ownership.
    class BarDevice final : public BusDevice {
    public:
        explicit BarDevice(VirtioPciTransport& transport) : m_transport(transport) {}
        void read(uint64_t offset, std::span<uint8_t> data) override { m_transport.bar_read(offset, data); }
        void write(uint64_t offset, std::span<const uint8_t> data) override { m_transport.bar_write(offset, data); }

    private:
        VirtioPciTransport& m_transport;
    };

    // Setup (virtio_pci_transport.cc).
    void add_capabilities();
    uint8_t add_virtio_capability(uint8_t cfg_type, uint32_t offset, uint32_t length);
    // PCI_CFG window (§4.1.4.9).
    [[nodiscard]] bool touches_window(uint16_t offset, size_t size) const;
    [[nodiscard]] std::optional<std::pair<uint32_t, uint32_t>> window_target();
    void window_read();
    void window_write();
    // Delivery (virtio_pci_transport.cc).
    void raise(uint8_t isr_bits, uint16_t vector);
    void reset_vectors();

    // BAR regions (virtio_pci_bar.cc).
    void common_read(uint64_t offset, std::span<uint8_t> data);
    void common_write(uint64_t offset, std::span<const uint8_t> data);
    [[nodiscard]] uint32_t read_register(CommonReg reg) const;
    void write_register(CommonReg reg, uint32_t value);
    [[nodiscard]] std::optional<QueueAddress> queue_address_at(uint64_t offset) const;
    [[nodiscard]] uint16_t checked_vector(uint32_t value) const;
    void isr_read(uint64_t offset, std::span<uint8_t> data);
    void device_access(uint64_t offset, std::span<uint8_t> read_data, std::span<const uint8_t> write_data);
    void notify_write(uint64_t offset, std::span<const uint8_t> data);
    void note_bad_access(uint64_t offset, size_t width, const char* access);

    std::string m_name;
    TransportCore m_core;  // first: it validates the device the layout is made for
    VirtioPciLayout m_layout;
    pci::MsixCapability m_msix;
    pci::PciConfigSpace m_config;
    BarDevice m_bar_device{*this};
    uint8_t m_pci_cfg_cap = 0;
    std::optional<Gpa> m_bar_address;

    std::atomic<uint8_t> m_isr{0};
    std::atomic<uint16_t> m_config_vector{kNoVector};
    std::unique_ptr<std::atomic<uint16_t>[]> m_queue_vectors;

    std::atomic<uint64_t> m_bad_accesses{0};
    std::atomic<uint64_t> m_interrupts_dropped{0};
    std::atomic<bool> m_bad_access_logged{false};
    std::atomic<bool> m_window_logged{false};
};

}  // namespace keel::virtio
