#include "arch/x86_64/boot_cpu_state.h"

#include <asm/processor-flags.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <string>

#include "arch/x86_64/gdt.h"
#include "arch/x86_64/layout.h"
#include "arch/x86_64/msrs.h"
#include "common/error.h"
#include "common/units.h"

namespace keel::x86 {
namespace {

using PageTablePage = std::array<uint64_t, kPageTableEntries>;
static_assert(sizeof(PageTablePage) == kPageTablePageSize);

// The boot structures in layout.h must be page aligned and must not overlap
// each other or the command line that follows them.
static_assert(kPml4.value % kPageTablePageSize == 0 && kPdpt.value % kPageTablePageSize == 0 &&
              kPd.value % kPageTablePageSize == 0);
static_assert(kBootStackTop.value <= kPml4.value);
static_assert(kPml4.value + kPageTablePageSize <= kPdpt.value);
static_assert(kPdpt.value + kPageTablePageSize <= kPd.value);
static_assert(kPd.value + kPdPageCount * kPageTablePageSize <= kCmdline.value);
static_assert(kPdPageCount <= kPageTableEntries, "one PDPT page must reach every PD page");

Gpa pd_page(uint64_t index) { return kPd.unchecked_add(index * kPageTablePageSize); }

void write_page(const GuestMemory& mem, Gpa gpa, const PageTablePage& page, const char* what) {
    mem.write_obj_or_throw(gpa, page, std::string("boot page table (") + what + ")");
}

void apply_boot_segments(kvm_sregs& sregs, const BootGdt& gdt) {
    const BootSegments segs = boot_segments(gdt);
    sregs.cs = segs.code;
    sregs.ds = segs.data;
    sregs.es = segs.data;
    sregs.fs = segs.data;
    sregs.gs = segs.data;
    sregs.ss = segs.data;
    sregs.tr = segs.tss;
    sregs.gdt.base = kGdtStart.value;
    sregs.gdt.limit = kBootGdtLimit;
    sregs.idt.base = kIdtStart.value;
    sregs.idt.limit = kBootIdtLimit;
}

void check_entry(BootProtocol protocol, Gpa entry) {
    // Linux64 runs with our page tables, so RIP must be identity-mapped; PVH
    // starts with paging off in 32-bit mode, so EIP must fit 32 bits.
    const uint64_t reach = protocol == BootProtocol::Linux64 ? kIdentityMapSize : uint64_t{1} << 32;
    if (entry.value >= reach) {
        throw Error("kernel entry point " + format_hex(entry.value) + " is above " + format_hex(reach) +
                    ", which the " + (protocol == BootProtocol::Linux64 ? "64-bit" : "PVH") +
                    " boot state cannot reach; load the kernel below 4 GiB");
    }
}

void check_lapic_offset(uint32_t offset) {
    if (offset % 16 != 0 || offset > KVM_APIC_REG_SIZE - sizeof(uint32_t)) {
        throw Error("local APIC register offset " + format_hex(offset) + " is not a register in the " +
                    format_hex(KVM_APIC_REG_SIZE) + "-byte KVM_GET_LAPIC page");
    }
}

}  // namespace

void write_identity_page_tables(const GuestMemory& mem) {
    PageTablePage page{};
    page[0] = kPdpt.value | kPtePresent | kPteWritable;
    write_page(mem, kPml4, page, "PML4");

    page.fill(0);
    for (uint64_t i = 0; i < kPdPageCount; ++i) {
        page[i] = pd_page(i).value | kPtePresent | kPteWritable;
    }
    write_page(mem, kPdpt, page, "PDPT");

    for (uint64_t pd = 0; pd < kPdPageCount; ++pd) {
        for (uint64_t i = 0; i < kPageTableEntries; ++i) {
            const uint64_t frame = (pd * kPageTableEntries + i) * kLargePageSize;
            page[i] = frame | kPtePresent | kPteWritable | kPtePageSize;
        }
        write_page(mem, pd_page(pd), page, "page directory");
    }
}

void write_boot_tables(const GuestMemory& mem, BootProtocol protocol) {
    write_boot_gdt(mem, make_boot_gdt(protocol));
    if (protocol == BootProtocol::Linux64) write_identity_page_tables(mem);
}

void setup_boot_sregs(kvm_sregs& sregs, BootProtocol protocol) {
    apply_boot_segments(sregs, make_boot_gdt(protocol));
    if (protocol == BootProtocol::Linux64) {
        sregs.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_PG;
        sregs.cr3 = kPml4.value;
        sregs.cr4 = X86_CR4_PAE;
        // KVM_SET_SREGS insists on LMA alongside LME+PG (kvm_is_valid_sregs()).
        sregs.efer = kEferLme | kEferLma;
    } else {
        sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
        sregs.cr3 = 0;
        sregs.cr4 = 0;
        sregs.efer = 0;
    }
}

kvm_regs boot_regs(BootProtocol protocol, Gpa entry) {
    check_entry(protocol, entry);
    kvm_regs regs{};
    regs.rip = entry.value;
    regs.rflags = X86_EFLAGS_FIXED;
    if (protocol == BootProtocol::Linux64) {
        regs.rsp = kBootStackTop.value;
        regs.rbp = kBootStackTop.value;
        regs.rsi = kZeroPage.value;
    } else {
        regs.rbx = kPvhStartInfo.value;
    }
    return regs;
}

kvm_fpu boot_fpu() {
    kvm_fpu fpu{};
    fpu.fcw = kFpuControlWord;
    fpu.mxcsr = kMxcsrDefault;
    return fpu;
}

VcpuRole vcpu_role(uint32_t vcpu_index) {
    return vcpu_index == 0 ? VcpuRole::Bootstrap : VcpuRole::Application;
}

uint32_t initial_mp_state(VcpuRole role) {
    return role == VcpuRole::Bootstrap ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_UNINITIALIZED;
}

uint32_t lapic_register(const kvm_lapic_state& lapic, uint32_t offset) {
    check_lapic_offset(offset);
    uint32_t value = 0;
    std::memcpy(&value, lapic.regs + offset, sizeof value);  // registers are little-endian u32
    return value;
}

void set_lapic_register(kvm_lapic_state& lapic, uint32_t offset, uint32_t value) {
    check_lapic_offset(offset);
    std::memcpy(lapic.regs + offset, &value, sizeof value);
}

void setup_lapic_lint(kvm_lapic_state& lapic) {
    const auto with_mode = [](uint32_t lvt, uint32_t mode) {
        return (lvt & ~kApicDeliveryModeMask) | (mode << kApicDeliveryModeShift);
    };
    set_lapic_register(lapic, kApicLvt0, with_mode(lapic_register(lapic, kApicLvt0), kApicDeliveryModeExtInt));
    set_lapic_register(lapic, kApicLvt1, with_mode(lapic_register(lapic, kApicLvt1), kApicDeliveryModeNmi));
}

}  // namespace keel::x86
