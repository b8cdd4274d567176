#pragma once

// What keel tells the kernel before its first instruction: the zero page
// (struct boot_params, boot.rst) for a bzImage, or struct hvm_start_info
// (Xen's PVH boot ABI) for an ELF vmlinux. Both carry the command line, the
// initrd, the memory map and the ACPI RSDP address.

#include <asm/bootparam.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "arch/x86_64/e820.h"
#include "loader/initrd.h"
#include "loader/loaded_kernel.h"
#include "memory/gpa.h"
#include "memory/guest_memory.h"

namespace keel::x86 {

// --- PVH start info: xen/include/public/arch-x86/hvm/start_info.h ---
// No UAPI header ships these, so they are defined here field for field.
inline constexpr uint32_t kXenHvmStartMagic = 0x336ec578;  // XEN_HVM_START_MAGIC_VALUE
inline constexpr uint32_t kHvmStartInfoVersion = 1;        // version 1 adds the memmap fields

struct HvmStartInfo {  // struct hvm_start_info
    uint32_t magic;
    uint32_t version;
    uint32_t flags;           // SIF_xxx; 0 for an unprivileged guest
    uint32_t nr_modules;
    uint64_t modlist_paddr;   // hvm_modlist_entry[nr_modules]
    uint64_t cmdline_paddr;   // NUL-terminated ASCII
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;    // version >= 1: hvm_memmap_table_entry[memmap_entries]
    uint32_t memmap_entries;
    uint32_t reserved;        // must be zero
};
static_assert(sizeof(HvmStartInfo) == 56);

struct HvmModlistEntry {  // struct hvm_modlist_entry
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr;
    uint64_t reserved;
};
static_assert(sizeof(HvmModlistEntry) == 32);

struct HvmMemmapTableEntry {  // struct hvm_memmap_table_entry; type: XEN_HVM_MEMMAP_TYPE_* (== E820 types)
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};
static_assert(sizeof(HvmMemmapTableEntry) == 24);

// boot.rst "type_of_loader": 0xff = undefined boot loader.
inline constexpr uint8_t kLoaderTypeUndefined = 0xff;
// boot.rst "heap_end_ptr": end of the setup heap/stack relative to the real-mode
// code, minus 0x200 — the conventional full 64 KiB segment. keel enters in
// 64-bit mode, so the real-mode setup never runs; the value only has to be sane.
inline constexpr uint16_t kSetupHeapEnd = 0xfe00;
// acpi_rsdp_addr was added in boot protocol 2.14.
inline constexpr uint16_t kAcpiRsdpProtocol = 0x020e;

// What the kernel is told, whichever boot protocol carries it.
struct BootInfo {
    std::string cmdline;
    std::optional<LoadedInitrd> initrd;
    std::vector<E820Entry> memory_map;
    std::optional<Gpa> acpi_rsdp;  // the ACPI builder places it at kBiosAreaStart
};

// Pure builders; throw keel::Error when the command line is too long (for
// this kernel's cmdline_size or kCmdlineMax) or the memory map too large.
[[nodiscard]] boot_params make_boot_params(const setup_header& header, const BootInfo& info);
[[nodiscard]] HvmStartInfo make_hvm_start_info(const BootInfo& info);
[[nodiscard]] std::vector<HvmMemmapTableEntry> make_hvm_memmap(const std::vector<E820Entry>& map);

// Write the command line to kCmdline and the zero page to kZeroPage.
void write_linux_boot_info(const GuestMemory& mem, const setup_header& header, const BootInfo& info);
// Write the command line to kCmdline, hvm_start_info to kPvhStartInfo, the
// memmap to kPvhMemmap and the initrd's modlist entry to kPvhModlist.
void write_pvh_boot_info(const GuestMemory& mem, const BootInfo& info);
// The one the loaded kernel needs. Afterwards the vCPU starts at kernel.entry with
// RSI = kZeroPage (Linux64) or EBX = kPvhStartInfo (Pvh).
void write_boot_info(const GuestMemory& mem, const LoadedKernel& kernel, const BootInfo& info);

}  // namespace keel::x86
