#include "arch/x86_64/cpuid.h"

#include <asm/kvm_para.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <string>

#include "arch/x86_64/layout.h"
#include "common/error.h"

namespace keel::x86 {
namespace {

// 8-bit CPUID fields (leaf 0x1 APIC ID/count, 0x80000008 NC, 0x8000001E core
// ID) hold every value below only because of this bound.
static_assert(kMaxVcpus <= 255);

using CpuidTable = std::vector<kvm_cpuid_entry2>;

enum class CpuVendor { Intel, Amd, Other };  // Hygon counts as AMD: same topology leaves

// The topology numbers every leaf is written from, for one vCPU.
struct TopologyShape {
    uint32_t vcpus;
    uint32_t threads_per_core;
    uint32_t cores;
    uint32_t smt_shift;      // x2APIC ID bits below the core ID
    uint32_t package_shift;  // x2APIC ID bits below the package ID
    uint32_t apic_id;
};

// ceil(log2(n)) for n >= 1: the ID bits n distinct values need.
uint32_t id_bits(uint32_t n) { return static_cast<uint32_t>(std::bit_width(n - 1)); }

TopologyShape shape_of(const CpuTopology& topo, uint32_t vcpu_index) {
    return TopologyShape{
        .vcpus = topo.vcpus,
        .threads_per_core = topo.threads_per_core,
        .cores = topo.cores_per_package(),
        .smt_shift = id_bits(topo.threads_per_core),
        .package_shift = id_bits(topo.vcpus),
        .apic_id = apic_id_for(vcpu_index),
    };
}

constexpr uint32_t get_field(uint32_t reg, unsigned lo, unsigned width) {
    return (reg >> lo) & ((1u << width) - 1);
}

// Callers pass values that fit the field (see the static_assert above).
constexpr uint32_t set_field(uint32_t reg, unsigned lo, unsigned width, uint32_t value) {
    const uint32_t mask = ((1u << width) - 1) << lo;
    return (reg & ~mask) | ((value << lo) & mask);
}

void set_flag(uint32_t& reg, uint32_t bit, bool on) { reg = on ? (reg | bit) : (reg & ~bit); }

bool indexed(const kvm_cpuid_entry2& e) { return (e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) != 0; }

kvm_cpuid_entry2* find_mut(CpuidTable& table, uint32_t function, uint32_t index = 0) {
    const auto it = std::find_if(table.begin(), table.end(), [&](const kvm_cpuid_entry2& e) {
        return e.function == function && (!indexed(e) || e.index == index);
    });
    return it == table.end() ? nullptr : &*it;
}

bool has_function(const CpuidTable& table, uint32_t function) {
    return std::any_of(table.begin(), table.end(),
                       [&](const kvm_cpuid_entry2& e) { return e.function == function; });
}

void remove_function(CpuidTable& table, uint32_t function) {
    std::erase_if(table, [&](const kvm_cpuid_entry2& e) { return e.function == function; });
}

kvm_cpuid_entry2 make_entry(uint32_t function, uint32_t index, uint32_t flags) {
    kvm_cpuid_entry2 e{};
    e.function = function;
    e.index = index;
    e.flags = flags;
    return e;
}

// The existing entry, or a zeroed one appended to the table.
kvm_cpuid_entry2& find_or_add(CpuidTable& table, uint32_t function) {
    if (auto* e = find_mut(table, function)) return *e;
    return table.emplace_back(make_entry(function, 0, 0));
}

CpuVendor vendor_of(const kvm_cpuid_entry2& leaf0) {
    char id[12];  // EBX, EDX, ECX spell the vendor string (SDM CPUID leaf 0)
    std::memcpy(id, &leaf0.ebx, 4);
    std::memcpy(id + 4, &leaf0.edx, 4);
    std::memcpy(id + 8, &leaf0.ecx, 4);
    const std::string vendor(id, sizeof id);
    if (vendor == "GenuineIntel") return CpuVendor::Intel;
    if (vendor == "AuthenticAMD" || vendor == "HygonGenuine") return CpuVendor::Amd;
    return CpuVendor::Other;
}

// Leaf 0: leaf 0xB is always provided, so the basic range must reach it.
void raise_max_basic_leaf(kvm_cpuid_entry2& leaf0) {
    leaf0.eax = std::max(leaf0.eax, kCpuidLeafExtTopology);
}

// Leaf 0x1 (SDM Vol. 2A Table 3-8 / 3-10 / 3-11).
void update_feature_leaf(kvm_cpuid_entry2& leaf1, const TopologyShape& s, const CpuidHostCaps& caps) {
    leaf1.ebx = set_field(leaf1.ebx, 24, 8, s.apic_id);  // initial APIC ID
    leaf1.ebx = set_field(leaf1.ebx, 16, 8, s.vcpus);    // addressable logical processor IDs
    set_flag(leaf1.edx, kCpuid1EdxHtt, s.vcpus > 1);      // EBX[23:16] is valid
    set_flag(leaf1.ecx, kCpuid1EcxHypervisor, true);
    if (caps.tsc_deadline_timer) set_flag(leaf1.ecx, kCpuid1EcxTscDeadline, true);
    // PDCM advertises IA32_PERF_CAPABILITIES, part of the PMU that keel hides.
    set_flag(leaf1.ecx, kCpuid1EcxPdcm, false);
}

// Cache sharing: L1 and L2 belong to one core, anything further out to the
// whole package. Used for leaf 0x4 and AMD's 0x8000001D (same EAX layout).
uint32_t threads_sharing_cache(uint32_t cache_eax, const TopologyShape& s) {
    const uint32_t level = get_field(cache_eax, 5, 3);
    return level <= 2 ? s.threads_per_core : s.vcpus;
}

bool is_cache_descriptor(const kvm_cpuid_entry2& e) { return get_field(e.eax, 0, 5) != 0; }

// Leaf 0x4 (SDM Vol. 2A Table 3-8): EAX[25:14] threads sharing this cache - 1,
// EAX[31:26] addressable core IDs in the package - 1 (a 6-bit field: beyond 64
// cores Linux reads leaf 0xB instead).
void update_cache_params_leaves(CpuidTable& table, const TopologyShape& s) {
    for (auto& e : table) {
        if (e.function != kCpuidLeafCacheParams || !is_cache_descriptor(e)) continue;
        e.eax = set_field(e.eax, 14, 12, threads_sharing_cache(e.eax, s) - 1);
        e.eax = set_field(e.eax, 26, 6, std::min(s.cores, 64u) - 1);
    }
}

// Leaves 0xB / 0x1F (SDM Vol. 2A Tables 3-8, "V2 Extended Topology"): an SMT
// level and a core level, then an invalid level; EDX is the x2APIC ID on every
// subleaf. KVM reports only a zeroed subleaf 0, so the leaf is rebuilt whole.
void write_extended_topology(CpuidTable& table, uint32_t function, const TopologyShape& s) {
    remove_function(table, function);
    const auto level = [&](uint32_t index, uint32_t shift, uint32_t count, uint32_t type) {
        auto e = make_entry(function, index, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
        e.eax = shift;                // bits to shift the x2APIC ID right to reach the next level
        e.ebx = count;                // logical processors at this level
        e.ecx = index | (type << 8);  // ECX[7:0] echoes the subleaf
        e.edx = s.apic_id;
        table.push_back(e);
    };
    level(0, s.smt_shift, s.threads_per_core, kTopologyLevelSmt);
    level(1, s.package_shift, s.vcpus, kTopologyLevelCore);
    level(2, 0, 0, kTopologyLevelInvalid);
}

// KVM reports the host's PMU in leaf 0xA; a guest that sees none keeps away
// from perf MSRs entirely (Firecracker does the same). On AMD the core
// counter extension and PerfMonV2 are the CPUID-visible parts.
void hide_pmu(CpuidTable& table) {
    if (auto* perfmon = find_mut(table, kCpuidLeafPerfmon)) {
        perfmon->eax = perfmon->ebx = perfmon->ecx = perfmon->edx = 0;
    }
    if (auto* ext1 = find_mut(table, kCpuidLeafExtFeatures)) {
        set_flag(ext1->ecx, kCpuidExt1EcxPerfCtrCore, false);
    }
    if (auto* v2 = find_mut(table, kCpuidLeafAmdPerfmonV2)) {
        v2->eax = v2->ebx = v2->ecx = v2->edx = 0;
    }
}

// TOPOEXT promises consistent 0x8000001D (cache topology) and 0x8000001E
// (extended APIC ID) leaves. 0x8000001E is synthesized; 0x8000001D must come
// from the host, so without it the feature is withdrawn.
bool can_keep_topoext(const CpuidTable& table) {
    const auto* max_ext = find_cpuid_entry(table, kCpuidLeafExtMax);
    const auto* l1 = find_cpuid_entry(table, kCpuidLeafAmdCacheTopology, 0);
    return max_ext != nullptr && max_ext->eax >= kCpuidLeafAmdExtApicId && l1 != nullptr &&
           is_cache_descriptor(*l1);
}

// AMD APM Vol. 3 E.4.15 (0x8000001D): EAX[25:14] NumSharingCache - 1.
void update_amd_cache_topology(CpuidTable& table, const TopologyShape& s) {
    for (auto& e : table) {
        if (e.function != kCpuidLeafAmdCacheTopology || !is_cache_descriptor(e)) continue;
        e.flags |= KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
        e.eax = set_field(e.eax, 14, 12, threads_sharing_cache(e.eax, s) - 1);
    }
}

// AMD APM Vol. 3 E.4.16 (0x8000001E): EAX extended APIC ID, EBX[7:0] core
// (compute unit) ID, EBX[15:8] threads per core - 1, ECX[7:0] node ID,
// ECX[10:8] nodes per processor - 1. One node: ECX = 0.
void write_amd_ext_apic_id(CpuidTable& table, const TopologyShape& s) {
    auto& e = find_or_add(table, kCpuidLeafAmdExtApicId);
    e.flags = 0;
    e.eax = s.apic_id;
    e.ebx = ((s.threads_per_core - 1) << 8) | (s.apic_id >> s.smt_shift);
    e.ecx = 0;
    e.edx = 0;
}

// AMD: CmpLegacy (0x80000001 ECX[1]) tells Linux the HTT count in leaf 1 is
// cores, not SMT siblings (detect_ht_early() stops there); 0x80000008 ECX gives
// NC = threads - 1 and ApicIdSize = x2APIC bits below the package
// (early_init_amd_mc()); TOPOEXT leaves as above (amd_get_topology()).
void update_amd_topology(CpuidTable& table, const TopologyShape& s) {
    auto* ext1 = find_mut(table, kCpuidLeafExtFeatures);
    if (ext1 != nullptr) set_flag(ext1->ecx, kCpuidExt1EcxCmpLegacy, s.vcpus > 1);
    if (auto* sizes = find_mut(table, kCpuidLeafAmdSizes)) {
        sizes->ecx = set_field(sizes->ecx, 0, 8, s.vcpus - 1);
        sizes->ecx = set_field(sizes->ecx, 12, 4, s.package_shift);
    }
    const bool topoext = ext1 != nullptr && (ext1->ecx & kCpuidExt1EcxTopoExt) != 0;
    if (topoext && can_keep_topoext(table)) {
        update_amd_cache_topology(table, s);
        write_amd_ext_apic_id(table, s);
        return;
    }
    if (ext1 != nullptr) set_flag(ext1->ecx, kCpuidExt1EcxTopoExt, false);
    remove_function(table, kCpuidLeafAmdCacheTopology);
    remove_function(table, kCpuidLeafAmdExtApicId);
}

// 0x40000000: "KVMKVMKVM\0\0\0" and the highest hypervisor leaf; 0x40000001:
// KVM's paravirt features (kvm-clock, PV EOI, ...) exactly as KVM reports them.
void write_hypervisor_leaves(CpuidTable& table) {
    auto& sig = find_or_add(table, kCpuidLeafHypervisor);
    static_assert(sizeof(KVM_SIGNATURE) - 1 == 3 * sizeof(uint32_t));
    sig.eax = kCpuidLeafKvmFeatures;
    const std::string_view signature(KVM_SIGNATURE, 12);
    std::memcpy(&sig.ebx, signature.data(), 4);
    std::memcpy(&sig.ecx, signature.data() + 4, 4);
    std::memcpy(&sig.edx, signature.data() + 8, 4);
    (void)find_or_add(table, kCpuidLeafKvmFeatures);  // none supported: all zero
}

kvm_cpuid_entry2& require(CpuidTable& table, uint32_t function) {
    if (auto* e = find_mut(table, function)) return *e;
    char leaf[16];
    std::snprintf(leaf, sizeof leaf, "0x%x", function);
    throw Error(std::string("KVM_GET_SUPPORTED_CPUID returned no leaf ") + leaf +
                "; this host's KVM is too old or broken for keel");
}

}  // namespace

void validate_topology(const CpuTopology& topo) {
    if (topo.vcpus == 0 || topo.vcpus > kMaxVcpus) {
        throw Error("vCPU count " + std::to_string(topo.vcpus) + " is out of range: keel supports 1 to " +
                    std::to_string(kMaxVcpus));
    }
    if (!std::has_single_bit(topo.threads_per_core) || topo.vcpus % topo.threads_per_core != 0) {
        throw Error("threads per core " + std::to_string(topo.threads_per_core) +
                    " must be a power of two that divides the vCPU count " + std::to_string(topo.vcpus));
    }
}

const kvm_cpuid_entry2* find_cpuid_entry(std::span<const kvm_cpuid_entry2> entries, uint32_t function,
                                         uint32_t index) {
    const auto it = std::find_if(entries.begin(), entries.end(), [&](const kvm_cpuid_entry2& e) {
        return e.function == function && (!indexed(e) || e.index == index);
    });
    return it == entries.end() ? nullptr : &*it;
}

std::vector<kvm_cpuid_entry2> build_guest_cpuid(std::span<const kvm_cpuid_entry2> supported,
                                                const CpuTopology& topo, uint32_t vcpu_index,
                                                const CpuidHostCaps& caps) {
    validate_topology(topo);
    if (vcpu_index >= topo.vcpus) {
        throw Error("vCPU index " + std::to_string(vcpu_index) + " is not below the vCPU count " +
                    std::to_string(topo.vcpus));
    }
    const TopologyShape shape = shape_of(topo, vcpu_index);
    CpuidTable table(supported.begin(), supported.end());
    const bool had_v2_topology = has_function(table, kCpuidLeafExtTopologyV2);

    auto& leaf0 = require(table, kCpuidLeafVendor);
    const CpuVendor vendor = vendor_of(leaf0);
    raise_max_basic_leaf(leaf0);
    update_feature_leaf(require(table, kCpuidLeafFeatures), shape, caps);
    update_cache_params_leaves(table, shape);
    write_extended_topology(table, kCpuidLeafExtTopology, shape);
    if (had_v2_topology) write_extended_topology(table, kCpuidLeafExtTopologyV2, shape);
    if (vendor == CpuVendor::Amd) update_amd_topology(table, shape);
    hide_pmu(table);
    write_hypervisor_leaves(table);
    return table;
}

}  // namespace keel::x86
