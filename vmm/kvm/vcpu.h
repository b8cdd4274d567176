#pragma once

#include "common/kvm_uapi.h"

#include <cstdint>
#include <span>
#include <vector>

#include "common/fd.h"

namespace keel {

// One vCPU fd and its shared kvm_run page.
class Vcpu {
public:
    Vcpu(UniqueFd fd, uint32_t index, size_t mmap_size);
    ~Vcpu();
    Vcpu(Vcpu&& other) noexcept;
    Vcpu& operator=(Vcpu&&) = delete;
    Vcpu(const Vcpu&) = delete;
    Vcpu& operator=(const Vcpu&) = delete;

    // KVM_RUN. Returns 0 or an errno (EINTR when a signal kicked us out); the
    // exit itself is described by run().
    [[nodiscard]] int run() const;
    [[nodiscard]] kvm_run& run_state() const { return *m_run; }
    [[nodiscard]] uint32_t index() const { return m_index; }

    void set_cpuid(std::span<const kvm_cpuid_entry2> entries) const;
    void set_msrs(std::span<const kvm_msr_entry> entries) const;
    [[nodiscard]] kvm_regs get_regs() const;
    void set_regs(const kvm_regs& regs) const;
    [[nodiscard]] kvm_sregs get_sregs() const;
    void set_sregs(const kvm_sregs& sregs) const;
    void set_fpu(const kvm_fpu& fpu) const;
    [[nodiscard]] kvm_lapic_state get_lapic() const;
    void set_lapic(const kvm_lapic_state& lapic) const;
    void set_mp_state(uint32_t state) const;
    // KVM_KVMCLOCK_CTRL: tells a guest with kvmclock that it was stopped, so
    // its watchdogs do not report the pause as a lockup. Returns the errno
    // (EINVAL when the guest has no kvmclock, which is fine).
    [[nodiscard]] int kvmclock_ctrl() const;
    [[nodiscard]] int fd() const { return m_fd.get(); }

private:
    UniqueFd m_fd;
    uint32_t m_index;
    size_t m_mmap_size;
    kvm_run* m_run = nullptr;
};

}  // namespace keel
