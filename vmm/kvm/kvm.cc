#include "kvm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <array>
#include <string>
#include <utility>

#include "common/error.h"
#include "kvm/vm.h"

namespace keel {

namespace {

struct RequiredCapability {
    long id;
    const char* name;
};

// Everything keel's boot path uses. KVM on any x86 host since ~2012 has these;
// missing ones mean an unusual or very old host kernel.
constexpr std::array kRequiredCapabilities{
    RequiredCapability{KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP (in-kernel interrupt controllers)"},
    RequiredCapability{KVM_CAP_PIT2, "KVM_CAP_PIT2 (in-kernel PIT)"},
    RequiredCapability{KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    RequiredCapability{KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
    RequiredCapability{KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    RequiredCapability{KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
    RequiredCapability{KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
    RequiredCapability{KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    RequiredCapability{KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE"},
};

std::string open_hint(int err) {
    switch (err) {
        case ENOENT:
            return " (no KVM on this host: load kvm-intel or kvm-amd, enable virtualization in the "
                   "firmware, or run keel inside scripts/kvm-sandbox)";
        case EACCES:
        case EPERM:
            return " (add your user to the 'kvm' group, or run as root)";
        case ENXIO:
        case ENODEV:
            return " (the kvm module is loaded but the CPU has no usable virtualization support)";
        default:
            return "";
    }
}

}  // namespace

int kvm_ioctl_or_throw(int fd, unsigned long request, const void* arg, const char* what) {
    const int ret = ::ioctl(fd, request, arg);
    if (ret < 0) throw_errno(what);
    return ret;
}

Kvm Kvm::open(const char* path) {
    UniqueFd fd(::open(path, O_RDWR | O_CLOEXEC));
    if (!fd.valid()) {
        const int err = errno;
        throw Error(errno_message(std::string("cannot open ") + path, err) + open_hint(err));
    }
    const int api = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION) {
        throw Error(std::string(path) + ": unsupported KVM API version " + std::to_string(api) +
                    " (keel needs " + std::to_string(KVM_API_VERSION) + ")");
    }
    Kvm kvm(std::move(fd));
    kvm.require_capabilities();
    kvm.m_vcpu_mmap_size = static_cast<size_t>(
        kvm_ioctl_or_throw(kvm.m_fd.get(), KVM_GET_VCPU_MMAP_SIZE, nullptr, "KVM_GET_VCPU_MMAP_SIZE"));
    int max = kvm.check_extension(KVM_CAP_MAX_VCPUS);
    if (max <= 0) max = kvm.check_extension(KVM_CAP_NR_VCPUS);
    kvm.m_max_vcpus = max > 0 ? static_cast<uint32_t>(max) : 4;  // KVM API doc: assume 4 if absent
    return kvm;
}

int Kvm::check_extension(long capability) const {
    const int ret = ::ioctl(m_fd.get(), KVM_CHECK_EXTENSION, capability);
    return ret < 0 ? 0 : ret;
}

void Kvm::require_capabilities() const {
    for (const auto& cap : kRequiredCapabilities) {
        if (check_extension(cap.id) <= 0) {
            throw Error(std::string("this host's KVM lacks ") + cap.name + ", which keel needs");
        }
    }
}

std::vector<kvm_cpuid_entry2> Kvm::supported_cpuid() const {
    // KVM answers E2BIG until the buffer is large enough.
    for (uint32_t capacity = 128; capacity <= 4096; capacity *= 2) {
        std::vector<uint8_t> buffer(sizeof(kvm_cpuid2) + capacity * sizeof(kvm_cpuid_entry2));
        auto* cpuid = reinterpret_cast<kvm_cpuid2*>(buffer.data());
        cpuid->nent = capacity;
        if (::ioctl(m_fd.get(), KVM_GET_SUPPORTED_CPUID, cpuid) == 0) {
            return {cpuid->entries, cpuid->entries + cpuid->nent};
        }
        if (errno != E2BIG) throw_errno("KVM_GET_SUPPORTED_CPUID");
    }
    throw Error("KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
}

Vm Kvm::create_vm() const {
    // Retry on EINTR: KVM_CREATE_VM can be interrupted on busy hosts.
    int fd = -1;
    do {
        fd = ::ioctl(m_fd.get(), KVM_CREATE_VM, 0);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) throw_errno("KVM_CREATE_VM");
    return Vm(UniqueFd(fd), m_vcpu_mmap_size);
}

}  // namespace keel
