#pragma once

#include "common/kvm_uapi.h"

#include <cstdint>
#include <vector>

#include "common/fd.h"

namespace keel {

class Vm;

// The /dev/kvm system fd. open() checks everything keel relies on up front, so
// a host that can't run keel says why before any guest setup happens.
class Kvm {
public:
    static constexpr const char* kDevicePath = "/dev/kvm";

    static Kvm open(const char* path = kDevicePath);

    [[nodiscard]] Vm create_vm() const;
    [[nodiscard]] std::vector<kvm_cpuid_entry2> supported_cpuid() const;
    [[nodiscard]] size_t vcpu_mmap_size() const { return m_vcpu_mmap_size; }
    [[nodiscard]] uint32_t max_vcpus() const { return m_max_vcpus; }
    // KVM_CHECK_EXTENSION; > 0 when present (some capabilities report a number).
    [[nodiscard]] int check_extension(long capability) const;

private:
    explicit Kvm(UniqueFd fd) : m_fd(std::move(fd)) {}
    void require_capabilities() const;

    UniqueFd m_fd;
    size_t m_vcpu_mmap_size = 0;
    uint32_t m_max_vcpus = 1;
};

// Turns an ioctl's -1 into keel::Error("what: strerror").
int kvm_ioctl_or_throw(int fd, unsigned long request, const void* arg, const char* what);

}  // namespace keel
