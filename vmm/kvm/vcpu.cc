#include "kvm/vcpu.h"

#include <sys/ioctl.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>
#include <utility>

#include "common/error.h"
#include "kvm/kvm.h"

namespace keel {

Vcpu::Vcpu(UniqueFd fd, uint32_t index, size_t mmap_size)
    : m_fd(std::move(fd)), m_index(index), m_mmap_size(mmap_size) {
    void* run = ::mmap(nullptr, m_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, m_fd.get(), 0);
    if (run == MAP_FAILED) throw_errno("cannot map the kvm_run page of vCPU " + std::to_string(index));
    m_run = static_cast<kvm_run*>(run);
}

Vcpu::~Vcpu() {
    if (m_run != nullptr) ::munmap(m_run, m_mmap_size);
}

Vcpu::Vcpu(Vcpu&& other) noexcept
    : m_fd(std::move(other.m_fd)),
      m_index(other.m_index),
      m_mmap_size(other.m_mmap_size),
      m_run(std::exchange(other.m_run, nullptr)) {}

int Vcpu::run() const {
    return ::ioctl(m_fd.get(), KVM_RUN, 0) < 0 ? errno : 0;
}

int Vcpu::kvmclock_ctrl() const { return ::ioctl(m_fd.get(), KVM_KVMCLOCK_CTRL, 0) < 0 ? errno : 0; }

void Vcpu::set_cpuid(std::span<const kvm_cpuid_entry2> entries) const {
    std::vector<uint8_t> buffer(sizeof(kvm_cpuid2) + entries.size_bytes());
    auto* cpuid = reinterpret_cast<kvm_cpuid2*>(buffer.data());
    cpuid->nent = static_cast<uint32_t>(entries.size());
    std::copy(entries.begin(), entries.end(), cpuid->entries);
    kvm_ioctl_or_throw(m_fd.get(), KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2");
}

void Vcpu::set_msrs(std::span<const kvm_msr_entry> entries) const {
    std::vector<uint8_t> buffer(sizeof(kvm_msrs) + entries.size_bytes());
    auto* msrs = reinterpret_cast<kvm_msrs*>(buffer.data());
    msrs->nmsrs = static_cast<uint32_t>(entries.size());
    std::copy(entries.begin(), entries.end(), msrs->entries);
    const int written = kvm_ioctl_or_throw(m_fd.get(), KVM_SET_MSRS, msrs, "KVM_SET_MSRS");
    // KVM stops at the first MSR it refuses and returns how many it set.
    if (static_cast<size_t>(written) != entries.size()) {
        char msr[16];
        std::snprintf(msr, sizeof msr, "%#x", entries[static_cast<size_t>(written)].index);
        throw Error(std::string("KVM_SET_MSRS: the host refused MSR ") + msr);
    }
}

kvm_regs Vcpu::get_regs() const {
    kvm_regs regs{};
    kvm_ioctl_or_throw(m_fd.get(), KVM_GET_REGS, &regs, "KVM_GET_REGS");
    return regs;
}

void Vcpu::set_regs(const kvm_regs& regs) const {
    kvm_ioctl_or_throw(m_fd.get(), KVM_SET_REGS, &regs, "KVM_SET_REGS");
}

kvm_sregs Vcpu::get_sregs() const {
    kvm_sregs sregs{};
    kvm_ioctl_or_throw(m_fd.get(), KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
    return sregs;
}

void Vcpu::set_sregs(const kvm_sregs& sregs) const {
    kvm_ioctl_or_throw(m_fd.get(), KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
}

void Vcpu::set_fpu(const kvm_fpu& fpu) const {
    kvm_ioctl_or_throw(m_fd.get(), KVM_SET_FPU, &fpu, "KVM_SET_FPU");
}

kvm_lapic_state Vcpu::get_lapic() const {
    kvm_lapic_state lapic{};
    kvm_ioctl_or_throw(m_fd.get(), KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC");
    return lapic;
}

void Vcpu::set_lapic(const kvm_lapic_state& lapic) const {
    kvm_ioctl_or_throw(m_fd.get(), KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC");
}

void Vcpu::set_mp_state(uint32_t state) const {
    kvm_mp_state mp{state};
    kvm_ioctl_or_throw(m_fd.get(), KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE");
}

}  // namespace keel
