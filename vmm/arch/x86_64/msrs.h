#pragma once

// The MSR values every vCPU starts with (KVM_SET_MSRS), BSP and APs alike.
//
// <asm/msr-index.h> is not exported to UAPI, so the indices below are defined
// here from the Intel SDM Vol. 4, Chapter 2 ("Model-Specific Registers"),
// Table 2-2 "IA-32 Architectural MSRs" (AMD's APM Vol. 2 §A.1 agrees).

#include "common/kvm_uapi.h"

#include <cstdint>
#include <vector>

namespace keel::x86 {

inline constexpr uint32_t kMsrIa32Tsc = 0x10;
inline constexpr uint32_t kMsrIa32SysenterCs = 0x174;
inline constexpr uint32_t kMsrIa32SysenterEsp = 0x175;
inline constexpr uint32_t kMsrIa32SysenterEip = 0x176;
inline constexpr uint32_t kMsrIa32MiscEnable = 0x1a0;
inline constexpr uint32_t kMsrMtrrDefType = 0x2ff;         // IA32_MTRR_DEF_TYPE
inline constexpr uint32_t kMsrEfer = 0xc000'0080;          // IA32_EFER (set through kvm_sregs.efer)
inline constexpr uint32_t kMsrStar = 0xc000'0081;
inline constexpr uint32_t kMsrLstar = 0xc000'0082;
inline constexpr uint32_t kMsrCstar = 0xc000'0083;
inline constexpr uint32_t kMsrSyscallMask = 0xc000'0084;   // IA32_FMASK
inline constexpr uint32_t kMsrKernelGsBase = 0xc000'0102;

// IA32_MISC_ENABLE bits (SDM Vol. 4 Table 2-2, address 1A0H).
inline constexpr uint64_t kMiscEnableFastString = uint64_t{1} << 0;
inline constexpr uint64_t kMiscEnableBtsUnavailable = uint64_t{1} << 11;
inline constexpr uint64_t kMiscEnablePebsUnavailable = uint64_t{1} << 12;

// IA32_MTRR_DEF_TYPE (SDM Vol. 3A §11.11.2.1): bits 7:0 default type, bit 11 E.
inline constexpr uint64_t kMtrrDefTypeEnable = uint64_t{1} << 11;

// IA32_EFER bits (SDM Vol. 3A §2.2.1, Table 2-1).
inline constexpr uint64_t kEferLme = uint64_t{1} << 8;   // long mode enable
inline constexpr uint64_t kEferLma = uint64_t{1} << 10;  // long mode active

// The entries for KVM_SET_MSRS, identical for every vCPU:
// - SYSENTER_*, STAR, LSTAR, CSTAR, FMASK, KERNEL_GS_BASE = 0: no stale host
//   or previous-boot values; the kernel programs them before enabling syscalls.
// - IA32_MISC_ENABLE = FAST_STRING | BTS_UNAVAIL | PEBS_UNAVAIL: fast REP
//   MOVS/STOS (Linux keys X86_FEATURE_REP_GOOD/ERMS use on it) while keeping
//   the two "unavailable" bits KVM sets at vCPU reset, so a guest with the DS
//   feature doesn't go looking for BTS/PEBS keel never offers.
// - IA32_MTRR_DEF_TYPE = E | write-back (0x806): with MTRRs enabled and no
//   ranges, all memory is write-back; otherwise the guest runs uncached.
// The TSC is deliberately NOT written: KVM already synchronizes every vCPU's
// TSC at creation (kvm_synchronize_tsc() treats the creation-time write of 0 as
// "synchronize with the other vCPUs"), whereas writing 0 from each vCPU thread
// at a different moment can leave the TSCs skewed on kernels whose sync window
// logic differs, and Linux then marks the TSC unstable.
[[nodiscard]] std::vector<kvm_msr_entry> boot_msr_entries();

}  // namespace keel::x86
