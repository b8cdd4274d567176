#pragma once

// The boot GDT keel writes at kGdtStart before the first instruction, and the
// conversion of its descriptors into the kvm_segment values KVM_SET_SREGS loads
// into the hidden segment registers (the CPU never reads the GDT itself until
// the guest reloads a selector).
//
// Layout (4 entries, 32 bytes, matching layout.h's "4 entries"):
//   0x00  null
//   0x08  TSS   32-bit busy TSS, base 0, limit 0x67 (loaded into TR)
//   0x10  code  __BOOT_CS: 64-bit (Linux64) or flat 32-bit (PVH)
//   0x18  data  __BOOT_DS: flat 4 GiB read/write
// The code and data selectors are the ones boot.rst ("64-bit Boot Protocol")
// requires: "CS must be __BOOT_CS(0x10) and DS, ES, SS must be __BOOT_DS(0x18)".
// Firecracker puts code at 0x08 and data at 0x10, which works only because
// startup_64 happens to reload its own GDT; keel follows the documented ABI and
// uses the otherwise unused slot 1 for the TSS, so the table stays 32 bytes.

#include "common/kvm_uapi.h"

#include <array>
#include <cstddef>
#include <cstdint>

#include "loader/loaded_kernel.h"
#include "memory/guest_memory.h"

namespace keel::x86 {

// One 8-byte segment descriptor (SDM Vol. 3A §3.4.5, Figure 3-8).
using GdtEntry = uint64_t;

// Builds a descriptor from the packed "flags" form used by Linux's GDT_ENTRY()
// and Firecracker: bits 15:12 = G, D/B, L, AVL; bits 7:0 = P, DPL, S, type.
// E.g. 0xa09b = 64-bit code (G, L, P, S, type 0xb execute/read/accessed).
[[nodiscard]] constexpr GdtEntry make_gdt_entry(uint16_t flags, uint32_t base, uint32_t limit) {
    const uint64_t f = flags & 0xf0ffu;
    const uint64_t b = base;
    const uint64_t l = limit;
    return ((b & 0xff00'0000u) << 32) | (f << 40) | ((l & 0x000f'0000u) << 32) |
           ((b & 0x00ff'ffffu) << 16) | (l & 0x0000'ffffu);
}

// Flags of the descriptors keel uses (the packed form above).
inline constexpr uint16_t kCode64Flags = 0xa09b;  // G=1 L=1 D=0, P, S, execute/read, accessed
inline constexpr uint16_t kCode32Flags = 0xc09b;  // G=1 D=1 L=0, P, S, execute/read, accessed
inline constexpr uint16_t kDataFlags = 0xc093;    // G=1 B=1, P, S, read/write, accessed
// A busy 32-bit TSS (type 0xb): VM entry requires TR to be a present busy TSS
// (SDM Vol. 3C §26.3.1.2), and the PVH ABI asks for base 0, limit 0x67.
inline constexpr uint16_t kTssFlags = 0x008b;
inline constexpr uint32_t kFlatLimit = 0xfffff;   // with G=1: 4 GiB
inline constexpr uint32_t kTssLimit = 0x67;       // 104-byte 32-bit TSS (SDM Vol. 3A §7.2.1)

inline constexpr uint16_t kGdtTssIndex = 1;
inline constexpr uint16_t kGdtCodeIndex = 2;      // selector 0x10 = __BOOT_CS
inline constexpr uint16_t kGdtDataIndex = 3;      // selector 0x18 = __BOOT_DS
inline constexpr size_t kBootGdtEntries = 4;

using BootGdt = std::array<GdtEntry, kBootGdtEntries>;

// The table for a boot protocol: only the code descriptor differs.
[[nodiscard]] BootGdt make_boot_gdt(BootProtocol protocol);

// The hidden-register view of descriptor `table_index` of a GDT. The limit is
// the effective byte limit (scaled by 4 KiB when G=1), which is what KVM puts in
// the VMCS/VMCB; a non-present descriptor becomes an unusable segment.
[[nodiscard]] kvm_segment segment_from_gdt_entry(GdtEntry entry, uint16_t table_index);

// The selectors and hidden state that KVM_SET_SREGS must load for `gdt`.
struct BootSegments {
    kvm_segment code;
    kvm_segment data;  // DS, ES, FS, GS, SS
    kvm_segment tss;   // TR
};
[[nodiscard]] BootSegments boot_segments(const BootGdt& gdt);

// Writes the GDT at kGdtStart and an empty IDT (8 zero bytes; IDTR limit 0) at
// kIdtStart. Throws keel::Error if guest RAM does not cover them.
void write_boot_gdt(const GuestMemory& mem, const BootGdt& gdt);

inline constexpr uint16_t kBootGdtLimit = static_cast<uint16_t>(kBootGdtEntries * sizeof(GdtEntry) - 1);
inline constexpr uint16_t kBootIdtLimit = 0;  // any exception before the kernel's own IDT triple-faults

}  // namespace keel::x86
