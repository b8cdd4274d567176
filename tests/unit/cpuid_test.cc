#include <catch2/catch.hpp>

#include "common/kvm_uapi.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "arch/x86_64/cpuid.h"
#include "common/error.h"

using namespace keel;
using namespace keel::x86;

namespace {

constexpr uint32_t kIdx = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

kvm_cpuid_entry2 leaf(uint32_t function, uint32_t index, uint32_t flags, uint32_t eax, uint32_t ebx,
                      uint32_t ecx, uint32_t edx) {
    kvm_cpuid_entry2 e{};
    e.function = function;
    e.index = index;
    e.flags = flags;
    e.eax = eax;
    e.ebx = ebx;
    e.ecx = ecx;
    e.edx = edx;
    return e;
}

// What KVM_GET_SUPPORTED_CPUID (Linux 6.1) returns on a 64-core/128-thread AMD
// EPYC (Zen 3, family 0x19) host: host APIC ID and counts in leaf 1 and
// 0x80000008, host cache sharing in 0x8000001D, zeroed 0xB and 0x8000001E,
// no TSC-deadline or hypervisor bit. PERFCTR_CORE is set as newer KVMs do.
std::vector<kvm_cpuid_entry2> amd_epyc_supported() {
    return {
        leaf(0x0, 0, 0, 0x10, 0x68747541, 0x444d4163, 0x69746e65),  // "AuthenticAMD"
        leaf(0x1, 0, 0, 0x00a00f11, 0x3f800800, 0x76f83203, 0x178bfbff),
        leaf(0x2, 0, 0, 0, 0, 0, 0),
        leaf(0x4, 0, kIdx, 0, 0, 0, 0),  // reserved on AMD: the first subleaf is already "no cache"
        leaf(0x6, 0, 0, 0x4, 0, 0, 0),
        leaf(0x7, 0, kIdx, 0, 0x219c97a9, 0x0040068c, 0x00000010),
        leaf(0xb, 0, kIdx, 0, 0, 0, 0x3f),
        leaf(0xd, 0, kIdx, 0x7, 0x340, 0x340, 0),
        leaf(0xd, 1, kIdx, 0xf, 0x340, 0, 0),
        leaf(0xd, 2, kIdx, 0x100, 0x240, 0, 0),
        leaf(0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d),
        leaf(0x40000001, 0, 0, 0x01007afb, 0, 0, 0),
        leaf(0x80000000, 0, 0, 0x80000021, 0x68747541, 0x444d4163, 0x69746e65),
        leaf(0x80000001, 0, 0, 0x00a00f11, 0, 0x00c003e7, 0x2fd3fbff),
        leaf(0x80000005, 0, 0, 0xff40ff40, 0xff40ff40, 0x20080140, 0x20080140),
        leaf(0x80000006, 0, 0, 0x48002200, 0x68004200, 0x02006140, 0x08009140),
        leaf(0x80000007, 0, 0, 0, 0, 0, 0x100),
        leaf(0x80000008, 0, 0, 0x3030, 0x0100d205, 0x0000707f, 0),
        leaf(0x8000000a, 0, 0, 0x1, 0x8, 0, 0x0001bcff),
        leaf(0x8000001d, 0, kIdx, 0x00004121, 0x01c0003f, 0x3f, 0),      // L1d, 2 threads
        leaf(0x8000001d, 1, kIdx, 0x00004122, 0x01c0003f, 0x3f, 0),      // L1i, 2 threads
        leaf(0x8000001d, 2, kIdx, 0x00004143, 0x01c0003f, 0x3ff, 0x2),   // L2, 2 threads
        leaf(0x8000001d, 3, kIdx, 0x0003c163, 0x03c0003f, 0x7fff, 0x1),  // L3, 16 threads
        leaf(0x8000001d, 4, kIdx, 0, 0, 0, 0),
        leaf(0x8000001e, 0, 0, 0, 0, 0, 0),
        leaf(0x80000021, 0, 0, 0x45, 0, 0, 0),
    };
}

// The same for a 2-socket, 56-core Intel Sapphire Rapids host: max basic leaf
// 0x1F (so both 0xB and 0x1F appear, zeroed), leaf 4 with the host's 64-core
// package and 128-thread L3, an architectural PMU in leaf 0xA, PDCM set.
std::vector<kvm_cpuid_entry2> intel_spr_supported() {
    return {
        leaf(0x0, 0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69),  // "GenuineIntel"
        leaf(0x1, 0, 0, 0x000806f8, 0x7f800800, 0x76f8b203, 0xbfebfbff),
        leaf(0x2, 0, 0, 0x00feff01, 0xf0, 0, 0),
        leaf(0x4, 0, kIdx, 0xfc004121, 0x02c0003f, 0x3f, 0),          // L1d, 2 threads
        leaf(0x4, 1, kIdx, 0xfc004122, 0x01c0003f, 0x3f, 0),          // L1i
        leaf(0x4, 2, kIdx, 0xfc004143, 0x03c0003f, 0x7ff, 0),         // L2
        leaf(0x4, 3, kIdx, 0xfc1fc163, 0x03c0003f, 0x1ffff, 0x4),     // L3, 128 threads
        leaf(0x4, 4, kIdx, 0, 0, 0, 0),
        leaf(0x6, 0, 0, 0x4, 0, 0, 0),
        leaf(0x7, 0, kIdx, 0x2, 0xf3bfbfbf, 0x1b415f6e, 0xbc1d4010),
        leaf(0x7, 1, kIdx, 0x1c30, 0, 0, 0),
        leaf(0xa, 0, 0, 0x08300805, 0, 0, 0x00008603),
        leaf(0xb, 0, kIdx, 0, 0, 0, 0x7f),
        leaf(0xd, 0, kIdx, 0x602e7, 0x2b00, 0x2b00, 0),
        leaf(0xd, 1, kIdx, 0x1f, 0x240, 0, 0),
        leaf(0x1f, 0, kIdx, 0, 0, 0, 0x7f),
        leaf(0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d),
        leaf(0x40000001, 0, 0, 0x01007afb, 0, 0, 0),
        leaf(0x80000000, 0, 0, 0x80000008, 0, 0, 0),
        leaf(0x80000001, 0, 0, 0, 0, 0x121, 0x2c100800),
        leaf(0x80000006, 0, 0, 0, 0, 0x08007040, 0),
        leaf(0x80000007, 0, 0, 0, 0, 0, 0x100),
        leaf(0x80000008, 0, 0, 0x0000302e, 0, 0, 0),
    };
}

uint32_t bits(uint32_t reg, unsigned lo, unsigned width) { return (reg >> lo) & ((1u << width) - 1); }

const kvm_cpuid_entry2& get(const std::vector<kvm_cpuid_entry2>& t, uint32_t function, uint32_t index = 0) {
    const auto* e = find_cpuid_entry(t, function, index);
    INFO("leaf 0x" << std::hex << function << " subleaf " << index);
    REQUIRE(e != nullptr);
    return *e;
}

int count_function(const std::vector<kvm_cpuid_entry2>& t, uint32_t function) {
    return static_cast<int>(std::count_if(t.begin(), t.end(), [&](const auto& e) { return e.function == function; }));
}

// What Linux 6.1's detect_extended_topology() (arch/x86/kernel/cpu/topology.c)
// derives from leaf 0xB/0x1F for one CPU.
struct LinuxXTopology {
    uint32_t apic_id;
    uint32_t core_id;
    uint32_t package_id;
    uint32_t max_cores;
    uint32_t siblings;
};

LinuxXTopology linux_extended_topology(const std::vector<kvm_cpuid_entry2>& t, uint32_t function) {
    const auto& smt = get(t, function, 0);
    REQUIRE(smt.ebx != 0);
    REQUIRE(bits(smt.ecx, 8, 8) == kTopologyLevelSmt);
    const uint32_t ht_width = bits(smt.eax, 0, 5);
    uint32_t pkg_width = ht_width;
    uint32_t core_siblings = bits(smt.ebx, 0, 16);
    for (uint32_t sub = 1;; ++sub) {
        const auto* e = find_cpuid_entry(t, function, sub);
        if (e == nullptr || bits(e->ecx, 8, 8) == kTopologyLevelInvalid) break;
        REQUIRE(bits(e->ecx, 0, 8) == sub);
        if (bits(e->ecx, 8, 8) == kTopologyLevelCore) core_siblings = bits(e->ebx, 0, 16);
        pkg_width = bits(e->eax, 0, 5);
    }
    const uint32_t core_mask = ((1u << pkg_width) - 1) >> ht_width;
    const uint32_t siblings = bits(smt.ebx, 0, 16);
    return {smt.edx, (smt.edx >> ht_width) & core_mask, smt.edx >> pkg_width, core_siblings / siblings, siblings};
}

std::vector<kvm_cpuid_entry2> build(const std::vector<kvm_cpuid_entry2>& supported, uint32_t vcpus,
                                    uint32_t index, uint32_t threads_per_core = 1) {
    return build_guest_cpuid(supported, CpuTopology{.vcpus = vcpus, .threads_per_core = threads_per_core},
                             index);
}

void check_common_topology(const std::vector<kvm_cpuid_entry2>& t, uint32_t vcpus, uint32_t index) {
    const auto& l1 = get(t, 0x1);
    CHECK(bits(l1.ebx, 24, 8) == apic_id_for(index));
    CHECK(bits(l1.ebx, 16, 8) == vcpus);
    CHECK(((l1.edx & kCpuid1EdxHtt) != 0) == (vcpus > 1));
    CHECK((l1.ecx & kCpuid1EcxHypervisor) != 0);

    for (uint32_t sub = 0; sub < 3; ++sub) {
        const auto& e = get(t, 0xb, sub);
        CHECK(e.flags == KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
        CHECK(e.edx == apic_id_for(index));
        CHECK(bits(e.ecx, 0, 8) == sub);
    }
    const auto& smt = get(t, 0xb, 0);
    CHECK(bits(smt.ecx, 8, 8) == kTopologyLevelSmt);
    CHECK(smt.ebx == 1);
    CHECK(smt.eax == 0);
    const auto& core = get(t, 0xb, 1);
    CHECK(bits(core.ecx, 8, 8) == kTopologyLevelCore);
    CHECK(core.ebx == vcpus);
    CHECK((uint64_t{1} << core.eax) >= vcpus);            // every APIC ID fits below the package bits
    CHECK((core.eax == 0 || (1u << (core.eax - 1)) < vcpus));  // and no wider than needed
    CHECK(bits(get(t, 0xb, 2).ecx, 8, 8) == kTopologyLevelInvalid);

    const auto& sig = get(t, 0x40000000);
    CHECK(sig.eax == 0x40000001);
    char text[12];
    std::memcpy(text, &sig.ebx, 4);
    std::memcpy(text + 4, &sig.ecx, 4);
    std::memcpy(text + 8, &sig.edx, 4);
    CHECK(std::string(text, 12) == std::string("KVMKVMKVM\0\0\0", 12));
    CHECK(get(t, 0x40000001).eax == 0x01007afb);  // kvm-clock etc. kept as KVM reports them
}

}  // namespace

TEST_CASE("CPUID topology: every vCPU of an AMD host sees exactly the VM's CPUs", "[cpuid]") {
    const uint32_t vcpus = GENERATE(1u, 2u, 4u, 64u, 254u);
    const auto supported = amd_epyc_supported();
    for (const uint32_t index : {0u, vcpus - 1}) {
        INFO("vcpus " << vcpus << " index " << index);
        const auto t = build(supported, vcpus, index);
        check_common_topology(t, vcpus, index);
        CHECK(count_function(t, 0x1f) == 0);  // the host has no 0x1F: none is invented

        const auto& ext1 = get(t, 0x80000001);
        CHECK(((ext1.ecx & kCpuidExt1EcxCmpLegacy) != 0) == (vcpus > 1));
        CHECK((ext1.ecx & kCpuidExt1EcxTopoExt) != 0);
        const auto& sizes = get(t, 0x80000008);
        CHECK(bits(sizes.ecx, 0, 8) == vcpus - 1);                   // NC
        CHECK((uint64_t{1} << bits(sizes.ecx, 12, 4)) >= vcpus);     // ApicIdSize
        CHECK(sizes.eax == 0x3030);                                  // address sizes untouched

        const auto& apic = get(t, 0x8000001e);
        CHECK(apic.eax == apic_id_for(index));
        CHECK(bits(apic.ebx, 0, 8) == index);  // core ID
        CHECK(bits(apic.ebx, 8, 8) == 0);      // one thread per core
        CHECK(apic.ecx == 0);                  // node 0 of 1
        CHECK(bits(get(t, 0x8000001d, 0).eax, 14, 12) == 0);          // L1d per core
        CHECK(bits(get(t, 0x8000001d, 2).eax, 14, 12) == 0);          // L2 per core
        CHECK(bits(get(t, 0x8000001d, 3).eax, 14, 12) == vcpus - 1);  // L3 shared by all
        CHECK(get(t, 0x8000001d, 3).ecx == 0x7fff);                   // geometry untouched
    }
}

TEST_CASE("CPUID topology: every vCPU of an Intel host sees exactly the VM's CPUs", "[cpuid]") {
    const uint32_t vcpus = GENERATE(1u, 2u, 4u, 64u, 254u);
    const auto supported = intel_spr_supported();
    for (const uint32_t index : {0u, vcpus - 1}) {
        INFO("vcpus " << vcpus << " index " << index);
        const auto t = build(supported, vcpus, index);
        check_common_topology(t, vcpus, index);
        for (uint32_t sub = 0; sub < 3; ++sub) {  // 0x1F mirrors 0xB: one die per package
            const auto& v1 = get(t, 0xb, sub);
            const auto& v2 = get(t, 0x1f, sub);
            CHECK(std::make_tuple(v1.eax, v1.ebx, v1.ecx, v1.edx, v1.flags) ==
                  std::make_tuple(v2.eax, v2.ebx, v2.ecx, v2.edx, v2.flags));
        }
        for (uint32_t sub = 0; sub < 4; ++sub) {
            const auto& cache = get(t, 0x4, sub);
            const uint32_t level = bits(cache.eax, 5, 3);
            CHECK(bits(cache.eax, 26, 6) == std::min(vcpus, 64u) - 1);  // cores per package
            CHECK(bits(cache.eax, 14, 12) == (level == 3 ? vcpus - 1 : 0));
            CHECK(bits(cache.eax, 0, 8) == bits(supported[3 + sub].eax, 0, 8));  // type/level kept
        }
        CHECK(get(t, 0x4, 4).eax == 0);  // the terminating subleaf stays
    }
}

TEST_CASE("CPUID topology: Linux's leaf 0xB decoding gives one package of distinct cores", "[cpuid]") {
    const uint32_t vcpus = GENERATE(1u, 3u, 64u, 254u);
    for (const auto& supported : {amd_epyc_supported(), intel_spr_supported()}) {
        std::set<uint32_t> cores;
        for (uint32_t i = 0; i < vcpus; ++i) {
            const auto x = linux_extended_topology(build(supported, vcpus, i), 0xb);
            CHECK(x.apic_id == i);
            CHECK(x.package_id == 0);
            CHECK(x.max_cores == vcpus);
            CHECK(x.siblings == 1);
            cores.insert(x.core_id);
        }
        CHECK(cores.size() == vcpus);
    }
}

TEST_CASE("CPUID topology: AMD legacy decoding (no TOPOEXT) also gives one package", "[cpuid]") {
    // Linux 6.1 early_init_amd_mc() + amd_detect_cmp(): cores = NC + 1, core
    // ID = APIC ID & ((1 << ApicIdSize) - 1), package = APIC ID >> ApicIdSize.
    const uint32_t vcpus = GENERATE(2u, 5u, 254u);
    for (uint32_t i = 0; i < vcpus; ++i) {
        const auto t = build(amd_epyc_supported(), vcpus, i);
        const auto& sizes = get(t, 0x80000008);
        const uint32_t coreid_bits = bits(sizes.ecx, 12, 4);
        const uint32_t apic = bits(get(t, 0x1).ebx, 24, 8);
        CHECK(bits(sizes.ecx, 0, 8) + 1 == vcpus);
        CHECK((apic & ((1u << coreid_bits) - 1)) == i);
        CHECK((apic >> coreid_bits) == 0);
    }
}

TEST_CASE("CPUID topology: two threads per core are described consistently", "[cpuid]") {
    const uint32_t vcpus = 6;
    for (uint32_t i = 0; i < vcpus; ++i) {
        const auto amd = build(amd_epyc_supported(), vcpus, i, 2);
        const auto x = linux_extended_topology(amd, 0xb);
        CHECK(x.siblings == 2);
        CHECK(x.max_cores == 3);
        CHECK(x.core_id == i / 2);
        CHECK(x.package_id == 0);
        CHECK(bits(get(amd, 0x8000001e).ebx, 8, 8) == 1);
        CHECK(bits(get(amd, 0x8000001e).ebx, 0, 8) == i / 2);
        CHECK(bits(get(amd, 0x8000001d, 0).eax, 14, 12) == 1);  // L1 shared by the two threads

        const auto intel = build(intel_spr_supported(), vcpus, i, 2);
        CHECK(bits(get(intel, 0x4, 0).eax, 26, 6) == 2);   // 3 cores
        CHECK(bits(get(intel, 0x4, 0).eax, 14, 12) == 1);  // L1 shared by 2 threads
        CHECK(bits(get(intel, 0x1).ebx, 16, 8) == vcpus);
    }
}

TEST_CASE("CPUID hides the PMU and keeps every supported leaf", "[cpuid]") {
    const auto supported = intel_spr_supported();
    const auto t = build(supported, 4, 1);
    const auto& perfmon = get(t, 0xa);
    CHECK(perfmon.eax == 0);
    CHECK(perfmon.edx == 0);
    CHECK((get(t, 0x1).ecx & kCpuid1EcxPdcm) == 0);
    CHECK((get(build(amd_epyc_supported(), 4, 1), 0x80000001).ecx & kCpuidExt1EcxPerfCtrCore) == 0);

    for (const auto& s : supported) {
        INFO("leaf 0x" << std::hex << s.function << " subleaf " << s.index);
        CHECK(find_cpuid_entry(t, s.function, s.index) != nullptr);
    }
    CHECK(get(t, 0x7).ebx == 0xf3bfbfbf);  // feature leaves pass through
    CHECK(get(t, 0xd, 1).eax == 0x1f);
}

TEST_CASE("CPUID sets TSC-deadline only when KVM offers it", "[cpuid]") {
    const auto supported = amd_epyc_supported();
    const CpuTopology topo{.vcpus = 2};
    CHECK((get(build_guest_cpuid(supported, topo, 0), 0x1).ecx & kCpuid1EcxTscDeadline) == 0);
    const auto with_cap = build_guest_cpuid(supported, topo, 0, CpuidHostCaps{.tsc_deadline_timer = true});
    CHECK((get(with_cap, 0x1).ecx & kCpuid1EcxTscDeadline) != 0);

    auto reported = supported;  // KVM >= 6.10 reports it in the table itself
    reported[1].ecx |= kCpuid1EcxTscDeadline;
    CHECK((get(build_guest_cpuid(reported, topo, 0), 0x1).ecx & kCpuid1EcxTscDeadline) != 0);
}

TEST_CASE("CPUID withdraws TOPOEXT when the host has no cache topology leaf", "[cpuid]") {
    auto supported = amd_epyc_supported();
    std::erase_if(supported, [](const auto& e) { return e.function == 0x8000001d; });
    const auto t = build(supported, 8, 3);
    CHECK((get(t, 0x80000001).ecx & kCpuidExt1EcxTopoExt) == 0);
    CHECK(count_function(t, 0x8000001d) == 0);
    CHECK(count_function(t, 0x8000001e) == 0);
    CHECK(bits(get(t, 0x80000008).ecx, 0, 8) == 7);  // the legacy path still counts right
}

TEST_CASE("CPUID adds the leaves the guest needs but the table lacks", "[cpuid]") {
    auto supported = intel_spr_supported();
    std::erase_if(supported, [](const auto& e) {
        return e.function == 0xb || e.function == 0x1f || (e.function >= 0x40000000 && e.function < 0x40000100);
    });
    supported[0].eax = 0x7;  // an old max basic leaf
    const auto t = build(supported, 2, 1);
    CHECK(get(t, 0x0).eax == 0xb);
    CHECK(get(t, 0xb, 1).ebx == 2);
    CHECK(count_function(t, 0x1f) == 0);
    CHECK(get(t, 0x40000000).eax == 0x40000001);
    CHECK(get(t, 0x40000001).eax == 0);  // no PV features reported: none claimed
    CHECK(count_function(t, 0x40000000) == 1);
}

TEST_CASE("CPUID leaves of one vCPU do not depend on another's", "[cpuid]") {
    const auto supported = amd_epyc_supported();
    const auto a = build(supported, 4, 2);
    const auto b = build(supported, 4, 2);
    REQUIRE(a.size() == b.size());
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(kvm_cpuid_entry2)) == 0);
    CHECK(get(build(supported, 4, 3), 0xb, 0).edx == 3);
}

TEST_CASE("CPUID rejects impossible topologies and tables", "[cpuid]") {
    const auto supported = amd_epyc_supported();
    CHECK_THROWS_AS(build(supported, 0, 0), Error);
    CHECK_THROWS_WITH(build(supported, 255, 0), Catch::Contains("255"));
    CHECK_THROWS_WITH(build(supported, 4, 4), Catch::Contains("vCPU index 4"));
    CHECK_THROWS_WITH(build(supported, 6, 0, 3), Catch::Contains("threads per core 3"));
    CHECK_THROWS_AS(build(supported, 6, 0, 4), Error);  // 4 does not divide 6
    auto no_leaf1 = supported;
    std::erase_if(no_leaf1, [](const auto& e) { return e.function == 0x1; });
    CHECK_THROWS_WITH(build(no_leaf1, 1, 0), Catch::Contains("leaf 0x1"));
    CHECK_NOTHROW(validate_topology({.vcpus = 254, .threads_per_core = 2}));
}
