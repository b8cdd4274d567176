#include "arch/x86_64/boot_params.h"

#include <span>

#include "arch/x86_64/layout.h"
#include "common/error.h"

namespace keel::x86 {

namespace {

uint32_t low32(uint64_t value) { return static_cast<uint32_t>(value & UINT32_MAX); }
uint32_t high32(uint64_t value) { return static_cast<uint32_t>(value >> 32); }

// kCmdlineMax includes the NUL; `kernel_max` (cmdline_size) excludes it.
void check_cmdline(const std::string& cmdline, std::optional<uint64_t> kernel_max) {
    if (cmdline.find('\0') != std::string::npos) throw Error("kernel command line contains a NUL byte");
    if (cmdline.size() + 1 > kCmdlineMax) {
        throw Error("kernel command line is " + std::to_string(cmdline.size()) + " bytes, longer than keel's limit of " +
                    std::to_string(kCmdlineMax - 1));
    }
    if (kernel_max && cmdline.size() > *kernel_max) {
        throw Error("kernel command line is " + std::to_string(cmdline.size()) + " bytes; this kernel accepts at most " +
                    std::to_string(*kernel_max) + " (cmdline_size in its setup header)");
    }
}

void write_cmdline(const GuestMemory& mem, const std::string& cmdline) {
    const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(cmdline.c_str()), cmdline.size() + 1);
    mem.write_or_throw(kCmdline, bytes, "kernel command line");
}

void fill_e820(boot_params& params, const std::vector<E820Entry>& map) {
    if (map.size() > E820_MAX_ENTRIES_ZEROPAGE) {
        throw Error("guest memory map has " + std::to_string(map.size()) + " entries, more than the " +
                    std::to_string(E820_MAX_ENTRIES_ZEROPAGE) + " the zero page holds");
    }
    for (size_t i = 0; i < map.size(); ++i) {
        params.e820_table[i] = boot_e820_entry{map[i].addr.value, map[i].size, map[i].type};
    }
    params.e820_entries = static_cast<uint8_t>(map.size());
}

// boot.rst: ramdisk_image/ramdisk_size hold the low 32 bits; the zero page's
// ext_ramdisk_* fields the high 32 bits (for initrds above 4 GiB).
void fill_initrd(boot_params& params, const LoadedInitrd& initrd) {
    params.hdr.ramdisk_image = low32(initrd.gpa.value);
    params.ext_ramdisk_image = high32(initrd.gpa.value);
    params.hdr.ramdisk_size = low32(initrd.size);
    params.ext_ramdisk_size = high32(initrd.size);
}

}  // namespace

boot_params make_boot_params(const setup_header& header, const BootInfo& info) {
    // A copy: setup_header is packed, and binding its field to the optional's
    // const reference is undefined behaviour when the header is misaligned.
    check_cmdline(info.cmdline, uint64_t{header.cmdline_size});
    boot_params params{};
    // boot.rst "Loading the rest of the kernel": the loader copies the file's
    // setup header into an otherwise zeroed boot_params and fills in its fields.
    params.hdr = header;
    params.hdr.type_of_loader = kLoaderTypeUndefined;
    params.hdr.loadflags = static_cast<uint8_t>(params.hdr.loadflags | CAN_USE_HEAP);
    params.hdr.heap_end_ptr = kSetupHeapEnd;
    params.hdr.cmd_line_ptr = low32(kCmdline.value);
    params.ext_cmd_line_ptr = high32(kCmdline.value);
    if (info.initrd) fill_initrd(params, *info.initrd);
    fill_e820(params, info.memory_map);
    if (info.acpi_rsdp && header.version >= kAcpiRsdpProtocol) params.acpi_rsdp_addr = info.acpi_rsdp->value;
    return params;
}

std::vector<HvmMemmapTableEntry> make_hvm_memmap(const std::vector<E820Entry>& map) {
    const uint64_t capacity = (kPvhModlist.value - kPvhMemmap.value) / sizeof(HvmMemmapTableEntry);
    if (map.size() > capacity) {
        throw Error("guest memory map has " + std::to_string(map.size()) + " entries, more than the " +
                    std::to_string(capacity) + " keel's PVH memmap holds");
    }
    std::vector<HvmMemmapTableEntry> table;
    for (const auto& entry : map) table.push_back({entry.addr.value, entry.size, entry.type, 0});
    return table;
}

HvmStartInfo make_hvm_start_info(const BootInfo& info) {
    check_cmdline(info.cmdline, std::nullopt);
    HvmStartInfo start{};
    start.magic = kXenHvmStartMagic;
    start.version = kHvmStartInfoVersion;
    start.cmdline_paddr = kCmdline.value;
    if (info.initrd) {
        start.nr_modules = 1;
        start.modlist_paddr = kPvhModlist.value;
    }
    start.rsdp_paddr = info.acpi_rsdp ? info.acpi_rsdp->value : 0;
    start.memmap_paddr = kPvhMemmap.value;
    start.memmap_entries = static_cast<uint32_t>(make_hvm_memmap(info.memory_map).size());
    return start;
}

void write_linux_boot_info(const GuestMemory& mem, const setup_header& header, const BootInfo& info) {
    const boot_params params = make_boot_params(header, info);
    write_cmdline(mem, info.cmdline);
    mem.write_obj_or_throw(kZeroPage, params, "boot_params (zero page)");
}

void write_pvh_boot_info(const GuestMemory& mem, const BootInfo& info) {
    const HvmStartInfo start = make_hvm_start_info(info);
    const std::vector<HvmMemmapTableEntry> memmap = make_hvm_memmap(info.memory_map);
    write_cmdline(mem, info.cmdline);
    mem.write_obj_or_throw(kPvhStartInfo, start, "PVH start info");
    for (size_t i = 0; i < memmap.size(); ++i) {
        mem.write_obj_or_throw(kPvhMemmap.unchecked_add(i * sizeof(HvmMemmapTableEntry)), memmap[i], "PVH memmap");
    }
    if (info.initrd) {
        const HvmModlistEntry module{info.initrd->gpa.value, info.initrd->size, 0, 0};
        mem.write_obj_or_throw(kPvhModlist, module, "PVH module list");
    }
}

void write_boot_info(const GuestMemory& mem, const LoadedKernel& kernel, const BootInfo& info) {
    switch (kernel.protocol) {
        case BootProtocol::Linux64:
            if (!kernel.setup) throw Error("internal error: a bzImage kernel without its setup header");
            write_linux_boot_info(mem, *kernel.setup, info);
            return;
        case BootProtocol::Pvh:
            write_pvh_boot_info(mem, info);
            return;
    }
}

}  // namespace keel::x86
