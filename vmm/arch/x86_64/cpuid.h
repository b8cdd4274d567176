#pragma once

// The CPUID table each vCPU gets (KVM_SET_CPUID2), derived from what KVM
// supports on this host (KVM_GET_SUPPORTED_CPUID) and the VM's topology.
//
// Topology keel presents: one socket, one die, cores_per_package() cores of
// threads_per_core threads each, and the APIC ID of vCPU i is i. With
// threads_per_core a power of two these dense IDs decompose exactly as the
// x2APIC-ID rules require: thread = id & (threads_per_core - 1), core =
// id >> log2(threads_per_core), package = id >> ceil(log2(vcpus)) = 0.
// Every leaf that encodes topology (0x1, 0x4, 0xB, 0x1F and AMD's 0x80000001,
// 0x80000008, 0x8000001D, 0x8000001E) is rewritten from that one description,
// so what Linux derives from each (arch/x86/kernel/cpu/topology.c, amd.c,
// cacheinfo.c in 6.1) agrees with the CPUs the MADT/MP table list.

#include "common/kvm_uapi.h"

#include <cstdint>
#include <span>
#include <vector>

namespace keel::x86 {

struct CpuTopology {
    uint32_t vcpus = 1;             // 1..kMaxVcpus
    uint32_t threads_per_core = 1;  // a power of two that divides vcpus

    [[nodiscard]] uint32_t cores_per_package() const { return vcpus / threads_per_core; }
};

// Throws keel::Error naming the bad value.
void validate_topology(const CpuTopology& topo);

// The APIC ID (xAPIC and x2APIC alike) of vCPU `vcpu_index`. The same number
// must be the vcpu_id passed to KVM_CREATE_VCPU (KVM derives the in-kernel
// LAPIC's ID from it) and the ID the ACPI MADT and MP table list.
[[nodiscard]] constexpr uint32_t apic_id_for(uint32_t vcpu_index) { return vcpu_index; }

// Host facts that KVM reports outside KVM_GET_SUPPORTED_CPUID.
struct CpuidHostCaps {
    // KVM_CHECK_EXTENSION(KVM_CAP_TSC_DEADLINE_TIMER) with the in-kernel LAPIC.
    // Kernels before 6.10 never put TSC-deadline in the supported table even
    // though the in-kernel LAPIC emulates it; true sets CPUID.1:ECX[24].
    bool tsc_deadline_timer = false;
};

// Builds the table for vCPU `vcpu_index` (< topo.vcpus). Every supported leaf
// is returned, rewritten where it describes topology, the PMU or the
// hypervisor; leaves the guest needs but the table lacks are added. Throws
// keel::Error for an invalid topology or index, or a table without leaf 0/1.
[[nodiscard]] std::vector<kvm_cpuid_entry2> build_guest_cpuid(
    std::span<const kvm_cpuid_entry2> supported, const CpuTopology& topo, uint32_t vcpu_index,
    const CpuidHostCaps& caps = {});

// The entry for (function, index), or nullptr. For a leaf whose entries don't
// have KVM_CPUID_FLAG_SIGNIFCANT_INDEX the index is ignored, as KVM does.
[[nodiscard]] const kvm_cpuid_entry2* find_cpuid_entry(std::span<const kvm_cpuid_entry2> entries,
                                                       uint32_t function, uint32_t index = 0);

// --- Leaves and bits keel rewrites (Intel SDM Vol. 2A "CPUID"; AMD APM Vol. 3
// Appendix E). Named here so tests and the integrator read the same numbers. ---
inline constexpr uint32_t kCpuidLeafVendor = 0x0;
inline constexpr uint32_t kCpuidLeafFeatures = 0x1;
inline constexpr uint32_t kCpuidLeafCacheParams = 0x4;     // Intel deterministic cache parameters
inline constexpr uint32_t kCpuidLeafPerfmon = 0xa;         // architectural performance monitoring
inline constexpr uint32_t kCpuidLeafExtTopology = 0xb;     // x2APIC topology
inline constexpr uint32_t kCpuidLeafExtTopologyV2 = 0x1f;  // V2 extended topology
inline constexpr uint32_t kCpuidLeafHypervisor = 0x4000'0000;  // KVM_CPUID_SIGNATURE
inline constexpr uint32_t kCpuidLeafKvmFeatures = 0x4000'0001; // KVM_CPUID_FEATURES
inline constexpr uint32_t kCpuidLeafExtMax = 0x8000'0000;
inline constexpr uint32_t kCpuidLeafExtFeatures = 0x8000'0001;
inline constexpr uint32_t kCpuidLeafAmdSizes = 0x8000'0008;         // NC, ApicIdSize
inline constexpr uint32_t kCpuidLeafAmdCacheTopology = 0x8000'001d;
inline constexpr uint32_t kCpuidLeafAmdExtApicId = 0x8000'001e;
inline constexpr uint32_t kCpuidLeafAmdPerfmonV2 = 0x8000'0022;

inline constexpr uint32_t kCpuid1EcxPdcm = 1u << 15;
inline constexpr uint32_t kCpuid1EcxTscDeadline = 1u << 24;
inline constexpr uint32_t kCpuid1EcxHypervisor = 1u << 31;
inline constexpr uint32_t kCpuid1EdxHtt = 1u << 28;
inline constexpr uint32_t kCpuidExt1EcxCmpLegacy = 1u << 1;
inline constexpr uint32_t kCpuidExt1EcxTopoExt = 1u << 22;
inline constexpr uint32_t kCpuidExt1EcxPerfCtrCore = 1u << 23;

// Leaf 0xB/0x1F level types (ECX[15:8]).
inline constexpr uint32_t kTopologyLevelInvalid = 0;
inline constexpr uint32_t kTopologyLevelSmt = 1;
inline constexpr uint32_t kTopologyLevelCore = 2;

}  // namespace keel::x86
