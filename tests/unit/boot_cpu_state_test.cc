#include <catch2/catch.hpp>

#include <asm/processor-flags.h>
#include "common/kvm_uapi.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <set>

#include "arch/x86_64/boot_cpu_state.h"
#include "arch/x86_64/gdt.h"
#include "arch/x86_64/layout.h"
#include "arch/x86_64/msrs.h"
#include "common/error.h"
#include "memory/guest_memory.h"

using namespace keel;
using namespace keel::x86;

namespace {

GuestMemory low_memory(uint64_t size = 16 * MiB) { return GuestMemory::create({{Gpa(0), size}}); }

// sregs roughly as KVM_GET_SREGS returns them after vCPU reset: caches
// disabled (CD|NW|ET), real mode, the local APIC enabled at its default base.
kvm_sregs reset_sregs() {
    kvm_sregs s{};
    s.cr0 = 0x60000010;
    s.apic_base = 0xfee00900;
    s.cs.selector = 0xf000;
    s.cs.base = 0xffff0000;
    s.ldt.type = 2;
    s.ldt.present = 1;
    return s;
}

// Walks 4-level paging (SDM Vol. 3A §4.5) through guest memory.
std::optional<uint64_t> translate(const GuestMemory& mem, uint64_t cr3, uint64_t va) {
    constexpr uint64_t kFrame = 0x000f'ffff'ffff'f000;
    const auto entry = [&](uint64_t table, uint64_t index) {
        return mem.read_obj<uint64_t>(Gpa((table & kFrame) + index * 8)).value();
    };
    const uint64_t pml4e = entry(cr3, (va >> 39) & 511);
    if ((pml4e & kPtePresent) == 0) return std::nullopt;
    const uint64_t pdpte = entry(pml4e, (va >> 30) & 511);
    if ((pdpte & kPtePresent) == 0 || (pdpte & kPtePageSize) != 0) return std::nullopt;
    const uint64_t pde = entry(pdpte, (va >> 21) & 511);
    if ((pde & kPtePresent) == 0 || (pde & kPtePageSize) == 0) return std::nullopt;
    return (pde & 0x000f'ffff'ffe0'0000) | (va & (kLargePageSize - 1));
}

}  // namespace

TEST_CASE("GDT entries match the packed Linux/Firecracker encodings", "[boot_cpu_state]") {
    CHECK(make_gdt_entry(kCode64Flags, 0, kFlatLimit) == 0x00af'9b00'0000'ffff);
    CHECK(make_gdt_entry(kCode32Flags, 0, kFlatLimit) == 0x00cf'9b00'0000'ffff);
    CHECK(make_gdt_entry(kDataFlags, 0, kFlatLimit) == 0x00cf'9300'0000'ffff);
    CHECK(make_gdt_entry(kTssFlags, 0, kTssLimit) == 0x0000'8b00'0000'0067);
    CHECK(make_gdt_entry(0x4093, 0x1234'5678, 0xabcde) == 0x124a'9334'5678'bcde);
}

TEST_CASE("a 64-bit code descriptor becomes a long-mode kvm_segment", "[boot_cpu_state]") {
    const kvm_segment cs = segment_from_gdt_entry(make_gdt_entry(kCode64Flags, 0, kFlatLimit), kGdtCodeIndex);
    CHECK(cs.l == 1);
    CHECK(cs.db == 0);
    CHECK(cs.type == 0xb);
    CHECK(cs.present == 1);
    CHECK(cs.dpl == 0);
    CHECK(cs.s == 1);
    CHECK(cs.g == 1);
    CHECK(cs.avl == 0);
    CHECK(cs.base == 0);
    CHECK(cs.limit == 0xffff'ffff);  // 0xfffff pages of 4 KiB, expanded as the VMCS wants
    CHECK(cs.selector == 0x10);      // __BOOT_CS
    CHECK(cs.unusable == 0);
}

TEST_CASE("data, 32-bit code and TSS descriptors convert field by field", "[boot_cpu_state]") {
    const kvm_segment ds = segment_from_gdt_entry(make_gdt_entry(kDataFlags, 0, kFlatLimit), kGdtDataIndex);
    CHECK(ds.type == 0x3);
    CHECK(ds.db == 1);
    CHECK(ds.l == 0);
    CHECK(ds.selector == 0x18);  // __BOOT_DS
    CHECK(ds.limit == 0xffff'ffff);

    const kvm_segment cs32 = segment_from_gdt_entry(make_gdt_entry(kCode32Flags, 0, kFlatLimit), kGdtCodeIndex);
    CHECK(cs32.db == 1);
    CHECK(cs32.l == 0);
    CHECK(cs32.type == 0xb);

    const kvm_segment tr = segment_from_gdt_entry(make_gdt_entry(kTssFlags, 0, kTssLimit), kGdtTssIndex);
    CHECK(tr.type == 0xb);  // busy TSS, as VM entry requires
    CHECK(tr.s == 0);
    CHECK(tr.present == 1);
    CHECK(tr.g == 0);
    CHECK(tr.limit == 0x67);
    CHECK(tr.selector == 0x08);

    const kvm_segment odd = segment_from_gdt_entry(make_gdt_entry(0x4093, 0x1234'5678, 0xabcde), 5);
    CHECK(odd.base == 0x1234'5678);
    CHECK(odd.limit == 0xabcde);  // G=0: byte granular
    CHECK(odd.selector == 0x28);

    CHECK(segment_from_gdt_entry(0, 0).unusable == 1);  // the null descriptor is not present
}

TEST_CASE("the boot GDT and empty IDT are written where layout.h says", "[boot_cpu_state]") {
    const auto mem = low_memory();
    write_boot_tables(mem, BootProtocol::Pvh);
    CHECK(mem.read_obj<BootGdt>(kGdtStart).value() == make_boot_gdt(BootProtocol::Pvh));
    CHECK(mem.read_obj<uint64_t>(kIdtStart).value() == 0);
    CHECK(mem.read_obj<uint64_t>(kPml4).value() == 0);  // PVH runs without paging: no tables

    const BootGdt gdt = make_boot_gdt(BootProtocol::Linux64);
    CHECK(gdt[0] == 0);
    CHECK(gdt[kGdtCodeIndex] == 0x00af'9b00'0000'ffff);
    CHECK(gdt[kGdtDataIndex] == 0x00cf'9300'0000'ffff);
    CHECK(kGdtStart.value + (kBootGdtLimit + 1u) <= kIdtStart.value);
}

TEST_CASE("identity page tables map exactly the first 4 GiB with 2 MiB pages", "[boot_cpu_state]") {
    const auto mem = low_memory();
    write_boot_tables(mem, BootProtocol::Linux64);

    CHECK(mem.read_obj<uint64_t>(kPml4).value() == (kPdpt.value | kPtePresent | kPteWritable));
    for (uint64_t i = 1; i < kPageTableEntries; ++i) {
        REQUIRE(mem.read_obj<uint64_t>(kPml4.unchecked_add(i * 8)).value() == 0);
    }
    for (uint64_t i = 0; i < kPageTableEntries; ++i) {
        const uint64_t pdpte = mem.read_obj<uint64_t>(kPdpt.unchecked_add(i * 8)).value();
        REQUIRE(pdpte == (i < 4 ? (kPd.value + i * 0x1000) | 0x3 : 0));
    }
    for (uint64_t i = 0; i < kPdPageCount * kPageTableEntries; ++i) {
        const uint64_t pde = mem.read_obj<uint64_t>(kPd.unchecked_add(i * 8)).value();
        REQUIRE(pde == ((i << 21) | kPtePresent | kPteWritable | kPtePageSize));
    }

    for (const uint64_t va : {uint64_t{0}, uint64_t{0x7000}, uint64_t{0x1234567}, kMmioHoleStart.value + 0x123,
                              kLapicStart.value, uint64_t{0xffff'ffff}}) {
        CHECK(translate(mem, kPml4.value, va) == va);
    }
    CHECK_FALSE(translate(mem, kPml4.value, 4 * GiB).has_value());
    CHECK_FALSE(translate(mem, kPml4.value, 0xffff'8000'0000'0000).has_value());
}

TEST_CASE("page tables that do not fit in guest RAM are a setup error", "[boot_cpu_state]") {
    const auto tiny = low_memory(0xa000);  // holds the PML4 page but not the PDPT
    CHECK_THROWS_WITH(write_identity_page_tables(tiny), Catch::Contains("PDPT"));
    const auto no_low_memory = GuestMemory::create({{Gpa(0x100000), 0x100000}});
    CHECK_THROWS_WITH(write_boot_tables(no_low_memory, BootProtocol::Pvh), Catch::Contains("GDT"));
}

TEST_CASE("Linux64 sregs: long mode with paging, GDT segments, APIC base kept", "[boot_cpu_state]") {
    kvm_sregs s = reset_sregs();
    setup_boot_sregs(s, BootProtocol::Linux64);
    CHECK(s.cr0 == (X86_CR0_PE | X86_CR0_ET | X86_CR0_PG));
    CHECK((s.cr0 & (X86_CR0_CD | X86_CR0_NW)) == 0);
    CHECK(s.cr3 == kPml4.value);
    CHECK(s.cr4 == X86_CR4_PAE);
    CHECK(s.efer == (kEferLme | kEferLma));
    CHECK(s.apic_base == 0xfee00900);

    CHECK(s.cs.l == 1);
    CHECK(s.cs.selector == 0x10);
    for (const kvm_segment* seg : {&s.ds, &s.es, &s.fs, &s.gs, &s.ss}) {
        CHECK(seg->selector == 0x18);
        CHECK(seg->type == 0x3);
        CHECK(seg->present == 1);
    }
    CHECK(s.tr.selector == 0x08);
    CHECK(s.tr.type == 0xb);
    CHECK(s.gdt.base == kGdtStart.value);
    CHECK(s.gdt.limit == 31);
    CHECK(s.idt.base == kIdtStart.value);
    CHECK(s.idt.limit == 0);
}

TEST_CASE("PVH sregs: 32-bit protected mode with paging off", "[boot_cpu_state]") {
    kvm_sregs s = reset_sregs();
    setup_boot_sregs(s, BootProtocol::Pvh);
    CHECK(s.cr0 == (X86_CR0_PE | X86_CR0_ET));
    CHECK((s.cr0 & X86_CR0_PG) == 0);
    CHECK(s.cr4 == 0);
    CHECK(s.efer == 0);
    CHECK(s.cs.l == 0);
    CHECK(s.cs.db == 1);
    CHECK(s.cs.base == 0);
    CHECK(s.cs.limit == 0xffff'ffff);
    CHECK(s.ss.db == 1);
    CHECK(s.tr.limit == 0x67);  // PVH ABI: TSS base 0, limit 0x67
    CHECK(s.apic_base == 0xfee00900);
}

TEST_CASE("BSP registers point at the entry, stack and boot info", "[boot_cpu_state]") {
    const kvm_regs linux64 = boot_regs(BootProtocol::Linux64, Gpa(0x100200));
    CHECK(linux64.rip == 0x100200);
    CHECK(linux64.rsp == kBootStackTop.value);
    CHECK(linux64.rbp == kBootStackTop.value);
    CHECK(linux64.rsi == kZeroPage.value);
    CHECK(linux64.rflags == 0x2);

    const kvm_regs pvh = boot_regs(BootProtocol::Pvh, Gpa(0x1000000));
    CHECK(pvh.rip == 0x1000000);
    CHECK(pvh.rbx == kPvhStartInfo.value);
    CHECK(pvh.rflags == 0x2);
    CHECK(pvh.rsi == 0);

    CHECK_THROWS_WITH(boot_regs(BootProtocol::Linux64, Gpa(4 * GiB)), Catch::Contains("entry point"));
    CHECK_THROWS_AS(boot_regs(BootProtocol::Pvh, Gpa(0x1'0000'1000)), Error);
}

TEST_CASE("FPU starts in the FINIT state with SIMD exceptions masked", "[boot_cpu_state]") {
    const kvm_fpu fpu = boot_fpu();
    CHECK(fpu.fcw == 0x37f);
    CHECK(fpu.mxcsr == 0x1f80);
}

TEST_CASE("boot MSRs: write-back MTRR default, fast strings, no TSC write", "[boot_cpu_state]") {
    const auto msrs = boot_msr_entries();
    std::set<uint32_t> seen;
    for (const auto& m : msrs) CHECK(seen.insert(m.index).second);
    const auto value = [&](uint32_t index) -> std::optional<uint64_t> {
        const auto it = std::find_if(msrs.begin(), msrs.end(), [&](const auto& m) { return m.index == index; });
        if (it == msrs.end()) return std::nullopt;
        return it->data;
    };
    CHECK(value(kMsrMtrrDefType) == 0x806);
    CHECK((value(kMsrIa32MiscEnable).value() & kMiscEnableFastString) != 0);
    for (const uint32_t zeroed : {kMsrIa32SysenterCs, kMsrIa32SysenterEsp, kMsrIa32SysenterEip, kMsrStar,
                                  kMsrLstar, kMsrCstar, kMsrSyscallMask, kMsrKernelGsBase}) {
        CHECK(value(zeroed) == uint64_t{0});
    }
    CHECK_FALSE(value(kMsrIa32Tsc).has_value());
}

TEST_CASE("vCPU 0 boots, the others wait for SIPI", "[boot_cpu_state]") {
    CHECK(vcpu_role(0) == VcpuRole::Bootstrap);
    CHECK(vcpu_role(1) == VcpuRole::Application);
    CHECK(vcpu_role(253) == VcpuRole::Application);
    CHECK(initial_mp_state(VcpuRole::Bootstrap) == KVM_MP_STATE_RUNNABLE);
    CHECK(initial_mp_state(VcpuRole::Application) == KVM_MP_STATE_UNINITIALIZED);
}

TEST_CASE("LAPIC LINT0 becomes ExtINT and LINT1 NMI, nothing else changes", "[boot_cpu_state]") {
    kvm_lapic_state lapic{};
    std::memset(lapic.regs, 0xa5, sizeof lapic.regs);
    set_lapic_register(lapic, kApicLvt0, 0x0001'0000);  // masked, as KVM resets it
    set_lapic_register(lapic, kApicLvt1, 0x0001'0000);
    kvm_lapic_state before = lapic;

    setup_lapic_lint(lapic);
    CHECK(lapic_register(lapic, kApicLvt0) == 0x0001'0700);
    CHECK(lapic_register(lapic, kApicLvt1) == 0x0001'0400);
    set_lapic_register(before, kApicLvt0, 0x0001'0700);
    set_lapic_register(before, kApicLvt1, 0x0001'0400);
    CHECK(std::memcmp(before.regs, lapic.regs, sizeof lapic.regs) == 0);

    CHECK_THROWS_AS(lapic_register(lapic, 0x400), Error);
    CHECK_THROWS_AS(lapic_register(lapic, 0x352), Error);
}
