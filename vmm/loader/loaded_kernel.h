#pragma once

// What a kernel loader leaves behind for the VM builder: how to enter the
// kernel and which guest memory it occupies.

#include <asm/bootparam.h>

#include <optional>

#include "memory/gpa.h"

namespace keel {

enum class BootProtocol {
    // bzImage, 64-bit boot protocol (boot.rst "64-bit Boot Protocol"): long mode,
    // identity-mapped paging, __BOOT_CS = 0x10 / __BOOT_DS = 0x18, RSI = zero page.
    Linux64,
    // ELF vmlinux with XEN_ELFNOTE_PHYS32_ENTRY (Xen docs/misc/pvh.pandoc): 32-bit
    // protected mode, paging off, flat 4 GiB CS/DS, EBX = hvm_start_info.
    Pvh,
};

struct LoadedKernel {
    BootProtocol protocol = BootProtocol::Linux64;
    // Linux64: startup_64 = load address + 0x200. Pvh: the note's 32-bit entry.
    Gpa entry;
    // First byte above everything the kernel occupies, including the area a
    // bzImage decompresses into (init_size): the initrd must stay above it.
    Gpa end;
    // Exclusive upper bound for the initrd: initrd_addr_max + 1 (bzImage) or
    // the start of the 32-bit MMIO hole (PVH).
    Gpa initrd_limit;
    // bzImage only: the setup header exactly as the file declares it, to be
    // copied into boot_params.hdr (boot.rst "Details of header fields").
    std::optional<setup_header> setup;
};

}  // namespace keel
