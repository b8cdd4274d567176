#include "kvm/vm.h"

#include <sys/ioctl.h>

#include <cstring>
#include <vector>

#include "common/error.h"
#include "kvm/kvm.h"
#include "kvm/vcpu.h"

namespace keel {

void Vm::set_user_memory_region(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host) const {
    kvm_userspace_memory_region region{};
    region.slot = slot;
    region.guest_phys_addr = guest_phys;
    region.memory_size = size;
    region.userspace_addr = reinterpret_cast<uint64_t>(host);
    kvm_ioctl_or_throw(m_fd.get(), KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION");
}

void Vm::set_tss_address(uint64_t gpa) const {
    if (::ioctl(m_fd.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(gpa)) < 0) {
        throw_errno("KVM_SET_TSS_ADDR");
    }
}

void Vm::set_identity_map_address(uint64_t gpa) const {
    const uint64_t addr = gpa;
    kvm_ioctl_or_throw(m_fd.get(), KVM_SET_IDENTITY_MAP_ADDR, &addr, "KVM_SET_IDENTITY_MAP_ADDR");
}

void Vm::create_irqchip() const {
    kvm_ioctl_or_throw(m_fd.get(), KVM_CREATE_IRQCHIP, nullptr, "KVM_CREATE_IRQCHIP");
}

void Vm::create_pit() const {
    kvm_pit_config config{};
    // Port 0x61 (speaker/NMI status) is emulated by KVM as a dummy, so the
    // guest's PIT calibration loops never exit to keel for it.
    config.flags = KVM_PIT_SPEAKER_DUMMY;
    kvm_ioctl_or_throw(m_fd.get(), KVM_CREATE_PIT2, &config, "KVM_CREATE_PIT2");
}

void Vm::register_irqfd(int eventfd, uint32_t gsi) const {
    kvm_irqfd irqfd{};
    irqfd.fd = static_cast<uint32_t>(eventfd);
    irqfd.gsi = gsi;
    kvm_ioctl_or_throw(m_fd.get(), KVM_IRQFD, &irqfd, "KVM_IRQFD");
}

void Vm::register_resampled_irqfd(int eventfd, int resample_eventfd, uint32_t gsi) const {
    kvm_irqfd irqfd{};
    irqfd.fd = static_cast<uint32_t>(eventfd);
    irqfd.resamplefd = static_cast<uint32_t>(resample_eventfd);
    irqfd.gsi = gsi;
    irqfd.flags = KVM_IRQFD_FLAG_RESAMPLE;
    kvm_ioctl_or_throw(m_fd.get(), KVM_IRQFD, &irqfd, "KVM_IRQFD (resample)");
}

void Vm::register_ioeventfd(int eventfd, IoSpace space, uint64_t address, uint32_t length,
                            std::optional<uint64_t> datamatch) const {
    kvm_ioeventfd ioeventfd{};
    ioeventfd.fd = eventfd;
    ioeventfd.addr = address;
    ioeventfd.len = length;
    if (space == IoSpace::Pio) ioeventfd.flags |= KVM_IOEVENTFD_FLAG_PIO;
    if (datamatch) {
        ioeventfd.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
        ioeventfd.datamatch = *datamatch;
    }
    kvm_ioctl_or_throw(m_fd.get(), KVM_IOEVENTFD, &ioeventfd, "KVM_IOEVENTFD");
}

void Vm::set_irq_line(uint32_t gsi, bool level) const {
    kvm_irq_level irq{};
    irq.irq = gsi;
    irq.level = level ? 1 : 0;
    kvm_ioctl_or_throw(m_fd.get(), KVM_IRQ_LINE, &irq, "KVM_IRQ_LINE");
}

void Vm::set_gsi_routing(std::span<const kvm_irq_routing_entry> entries) const {
    // struct kvm_irq_routing ends in a flexible array: header, then entries,
    // in one 8-byte aligned buffer.
    const size_t bytes = sizeof(kvm_irq_routing) + entries.size_bytes();
    std::vector<uint64_t> buffer((bytes + sizeof(uint64_t) - 1) / sizeof(uint64_t), 0);
    kvm_irq_routing header{};
    header.nr = static_cast<uint32_t>(entries.size());
    std::memcpy(buffer.data(), &header, sizeof header);
    if (!entries.empty()) {
        std::memcpy(reinterpret_cast<uint8_t*>(buffer.data()) + sizeof header, entries.data(), entries.size_bytes());
    }
    kvm_ioctl_or_throw(m_fd.get(), KVM_SET_GSI_ROUTING, buffer.data(), "KVM_SET_GSI_ROUTING");
}

Vcpu Vm::create_vcpu(uint32_t index) const {
    const int fd = ::ioctl(m_fd.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(index));
    if (fd < 0) throw_errno("KVM_CREATE_VCPU " + std::to_string(index));
    return Vcpu(UniqueFd(fd), index, m_vcpu_mmap_size);
}

}  // namespace keel
