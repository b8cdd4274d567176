#pragma once

#include "common/kvm_uapi.h"

#include <cstdint>
#include <optional>
#include <span>

#include "common/fd.h"

namespace keel {

class Vcpu;

// A KVM VM fd. Owns nothing but the fd: guest memory belongs to GuestMemory
// and must outlive the VM's use of it.
class Vm {
public:
    Vm(UniqueFd fd, size_t vcpu_mmap_size) : m_fd(std::move(fd)), m_vcpu_mmap_size(vcpu_mmap_size) {}

    void set_user_memory_region(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host) const;
    void set_tss_address(uint64_t gpa) const;
    void set_identity_map_address(uint64_t gpa) const;
    // In-kernel PIC + IOAPIC + LAPICs, and the PIT (whose speaker port KVM fakes).
    void create_irqchip() const;
    void create_pit() const;
    // Edge interrupt source: writing 1 to `eventfd` pulses `gsi`.
    void register_irqfd(int eventfd, uint32_t gsi) const;
    // Level interrupt source (KVM_IRQFD_FLAG_RESAMPLE): writing 1 to `eventfd`
    // raises `gsi` and it stays high until the guest's end of interrupt for it;
    // then KVM lowers it and signals `resample_eventfd`, so that the device
    // can raise it again if it is still asserted.
    void register_resampled_irqfd(int eventfd, int resample_eventfd, uint32_t gsi) const;
    void set_irq_line(uint32_t gsi, bool level) const;
    // KVM_SET_GSI_ROUTING: replaces the VM's whole routing table with `entries`
    // (KVM_CAP_IRQ_ROUTING; at most KVM_MAX_IRQ_ROUTES entries).
    void set_gsi_routing(std::span<const kvm_irq_routing_entry> entries) const;
    // A guest write of `length` bytes (0: any width, MMIO only) to `address`
    // — equal to `datamatch` when given — signals `eventfd` inside KVM
    // instead of exiting to keel.
    enum class IoSpace : uint8_t { Mmio, Pio };
    void register_ioeventfd(int eventfd, IoSpace space, uint64_t address, uint32_t length,
                            std::optional<uint64_t> datamatch) const;

    [[nodiscard]] Vcpu create_vcpu(uint32_t index) const;
    [[nodiscard]] int fd() const { return m_fd.get(); }

private:
    UniqueFd m_fd;
    size_t m_vcpu_mmap_size;
};

}  // namespace keel
