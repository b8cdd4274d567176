#pragma once

// The architectural state of each vCPU at keel's first KVM_RUN, for the two
// ways keel enters a kernel (keel::BootProtocol):
//
//   Linux64  boot.rst "64-bit Boot Protocol": long mode, paging on with an
//            identity map, CS = __BOOT_CS, DS/ES/SS = __BOOT_DS, interrupts
//            off, RSI = struct boot_params; RIP = load address + 0x200.
//   Pvh      Xen docs/misc/pvh.pandoc: 32-bit protected mode, paging off,
//            flat 4 GiB CS/DS/ES/SS, TR a 32-bit TSS (base 0, limit 0x67),
//            EBX = struct hvm_start_info; RIP = the PHYS32_ENTRY note.
//
// Only the BSP (vCPU 0) gets registers. APs stay in KVM's reset state and wait
// for INIT/SIPI in the in-kernel LAPIC; the guest kernel starts them through
// its real-mode trampoline. The order per vCPU that the integrator follows:
//   1. KVM_SET_CPUID2   (build_guest_cpuid; KVM validates CR4 bits against it)
//   2. KVM_SET_MSRS     (boot_msr_entries)
//   3. BSP only: KVM_GET_SREGS -> setup_boot_sregs -> KVM_SET_SREGS,
//      KVM_SET_REGS (boot_regs), KVM_SET_FPU (boot_fpu)
//   4. KVM_GET_LAPIC -> setup_lapic_lint -> KVM_SET_LAPIC (3 and 4 may swap:
//      both keep the apic_base KVM reports)
//   5. leave the MP state alone: with the in-kernel irqchip KVM already makes
//      the vCPU whose id is the boot CPU id (0) RUNNABLE and every other one
//      UNINITIALIZED (initial_mp_state says which applies).
// Guest memory is prepared once per VM with write_boot_tables.

#include "common/kvm_uapi.h"

#include <cstdint>

#include "common/units.h"
#include "loader/loaded_kernel.h"
#include "memory/gpa.h"
#include "memory/guest_memory.h"

namespace keel::x86 {

// --- Identity page tables for Linux64 (SDM Vol. 3A §4.5, 4-level paging) ---
inline constexpr uint64_t kIdentityMapSize = 4 * GiB;
inline constexpr uint64_t kPageTablePageSize = 4 * KiB;
inline constexpr uint64_t kPageTableEntries = 512;
inline constexpr uint64_t kLargePageSize = 2 * MiB;
inline constexpr uint64_t kPdPageCount = kIdentityMapSize / (kPageTableEntries * kLargePageSize);  // 4
inline constexpr uint64_t kPtePresent = uint64_t{1} << 0;
inline constexpr uint64_t kPteWritable = uint64_t{1} << 1;
inline constexpr uint64_t kPtePageSize = uint64_t{1} << 7;  // PS: the PDE maps a 2 MiB page

// Writes PML4 (kPml4), PDPT (kPdpt) and kPdPageCount page directories (kPd...)
// mapping [0, 4 GiB) to itself with 2 MiB write-back pages. Whole pages are
// written so stale bytes can never become mappings. Throws keel::Error if guest
// RAM doesn't cover them.
void write_identity_page_tables(const GuestMemory& mem);

// GDT + empty IDT, plus the identity page tables for Linux64.
void write_boot_tables(const GuestMemory& mem, BootProtocol protocol);

// --- Registers (BSP only) ---

// Rewrites the mode-defining fields of `sregs`, which must come from
// KVM_GET_SREGS on this vCPU: apic_base, the interrupt bitmap and CR8 are kept
// (a zeroed apic_base would disable the local APIC).
//   Linux64: CR0 = PE|ET|PG, CR3 = kPml4, CR4 = PAE, EFER = LME|LMA
//   Pvh:     CR0 = PE|ET,    CR3 = 0,     CR4 = 0,   EFER = 0
// Both: CS/DS/ES/FS/GS/SS/TR from make_boot_gdt(protocol), GDTR = kGdtStart,
// IDTR = kIdtStart with limit 0. CD/NW end up clear, so caches are on.
void setup_boot_sregs(kvm_sregs& sregs, BootProtocol protocol);

// Linux64: RIP = entry, RSP = RBP = kBootStackTop, RSI = kZeroPage.
// Pvh:     RIP = entry, RBX = kPvhStartInfo.
// Both: RFLAGS = 0x2 (only the always-one bit: IF clear). Throws keel::Error
// if the entry point is not reachable in that mode (Linux64: outside the
// identity map; Pvh: above 4 GiB).
[[nodiscard]] kvm_regs boot_regs(BootProtocol protocol, Gpa entry);

inline constexpr uint16_t kFpuControlWord = 0x37f;  // FINIT default (SDM Vol. 1 §8.1.5)
inline constexpr uint32_t kMxcsrDefault = 0x1f80;   // all SIMD exceptions masked (SDM Vol. 1 §10.2.3)
[[nodiscard]] kvm_fpu boot_fpu();

// --- Which vCPU gets what ---
enum class VcpuRole {
    Bootstrap,    // vCPU 0: registers, sregs and FPU above
    Application,  // waits for INIT/SIPI: CPUID, MSRs and LAPIC only
};
[[nodiscard]] VcpuRole vcpu_role(uint32_t vcpu_index);
// KVM_MP_STATE_RUNNABLE for the BSP, KVM_MP_STATE_UNINITIALIZED for APs.
[[nodiscard]] uint32_t initial_mp_state(VcpuRole role);

// --- Local APIC (SDM Vol. 3A §11.5.1, Figure 11-8; Table 11-1 offsets) ---
inline constexpr uint32_t kApicLvt0 = 0x350;  // LINT0
inline constexpr uint32_t kApicLvt1 = 0x360;  // LINT1
inline constexpr uint32_t kApicDeliveryModeShift = 8;
inline constexpr uint32_t kApicDeliveryModeMask = 0x7u << kApicDeliveryModeShift;
inline constexpr uint32_t kApicDeliveryModeNmi = 0x4;
inline constexpr uint32_t kApicDeliveryModeExtInt = 0x7;

// Virtual-wire mode as a PC BIOS leaves it (MP spec §3.6.2.2): LINT0 delivers
// the 8259 PIC's interrupts (ExtINT), LINT1 delivers NMI. Only the delivery
// mode changes; the mask bit and the rest stay as KVM reset them.
void setup_lapic_lint(kvm_lapic_state& lapic);
[[nodiscard]] uint32_t lapic_register(const kvm_lapic_state& lapic, uint32_t offset);
void set_lapic_register(kvm_lapic_state& lapic, uint32_t offset, uint32_t value);

}  // namespace keel::x86
