// libFuzzer target: the fuzz bytes are a user's kernel command line (as
// --cmdline or a config file's boot_args give it: any bytes) and the machine
// around it: how many virtio-mmio devices, the boot protocol, the kernel's
// cmdline_size and the memory map's length. It runs the path the machine
// builder takes: the virtio_mmio.device= parameters keel appends when the
// line says acpi=off, then write_linux_boot_info / write_pvh_boot_info into
// a fake guest RAM filled with a sentinel.
//
// Checks:
//   - mmio_needs_cmdline_devices() agrees with an independent reading (the
//     last whitespace-separated acpi= word is acpi=off), and each appended
//     parameter names its device's window and GSI;
//   - the builders throw keel::Error exactly when the line holds a NUL, does
//     not fit kCmdlineMax with its NUL, exceeds a bzImage's cmdline_size, or
//     the memory map does not fit the protocol's table; then guest memory is
//     untouched;
//   - otherwise guest memory at kCmdline holds the line and one NUL, and
//     nothing else in the command-line area changed; the zero page or the
//     PVH start info points at kCmdline.
//
// Input layout:
//   u8  flags: bit 0 PVH (else bzImage), bits 6:1 virtio-mmio devices
//   u32 cmdline_size of the bzImage's setup header
//   u8  memory map entries (0..255)
//   u8  append: 0 none, else " acpi=off" or " acpi=on" (bit 0)
//   the rest: the user's command line

#include <asm/bootparam.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "arch/x86_64/boot_params.h"
#include "arch/x86_64/layout.h"
#include "common/error.h"
#include "core/virtio_placement.h"
#include "fuzz_input.h"
#include "sentinel_ram.h"
#include "memory/guest_memory.h"
#include "virtio/mmio_transport.h"

namespace {

using keel::Gpa;
using keel::GuestMemory;
using keel::fuzz::check;
namespace x86 = keel::x86;

constexpr uint64_t kRamSize = 0x40000;  // covers the zero page, PVH info and the command line

keel::fuzz::SentinelRam& sentinel_ram() {
    static keel::fuzz::SentinelRam instance(kRamSize);
    return instance;
}
GuestMemory& memory() { return sentinel_ram().memory(); }
uint8_t* ram() { return sentinel_ram().bytes(); }
bool untouched(uint64_t start, uint64_t end) { return sentinel_ram().untouched(start, end); }

// The kernel's view (and keel's promise): words split on whitespace, the
// last acpi= wins.
bool acpi_off(std::string_view line) {
    bool off = false;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i])) != 0) ++i;
        const size_t start = i;
        while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i])) == 0) ++i;
        const std::string_view word = line.substr(start, i - start);
        if (word.starts_with("acpi=")) off = word == "acpi=off";
    }
    return off;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    keel::fuzz::FuzzInput in(std::span(data, size));
    const uint8_t flags = in.u8();
    const bool pvh = (flags & 1) != 0;
    const size_t devices = (flags >> 1) & 0x3f;
    const uint32_t kernel_max = in.u32();
    const size_t map_entries = in.u8();
    const uint8_t append = in.u8();
    const auto rest = in.bytes(size);
    std::string user(rest.begin(), rest.end());
    if (append != 0) user += (append & 1) != 0 ? " acpi=off" : " acpi=on";

    // What Machine does: parameters for the guest that will not read ACPI.
    std::string cmdline = user;
    const bool on_cmdline = keel::mmio_needs_cmdline_devices(user);
    check(on_cmdline == acpi_off(user));
    std::vector<keel::MmioPlacement> placements;
    try {
        placements = keel::place_mmio_devices(devices);
    } catch (const keel::Error&) {
        check(devices > 0);
    }
    if (on_cmdline) {
        for (const auto& p : placements) {
            const std::string param = keel::virtio::virtio_mmio_cmdline_parameter(p.base, p.size, p.gsi);
            check(param.starts_with("virtio_mmio.device=") && param.find_first_of(" \t\n") == std::string::npos);
            char hex[32];
            std::snprintf(hex, sizeof hex, "@0x%llx:%u", static_cast<unsigned long long>(p.base.value), p.gsi);
            check(param.ends_with(hex));
            cmdline += " " + param;
        }
    }

    x86::BootInfo info;
    info.cmdline = cmdline;
    for (size_t i = 0; i < map_entries; ++i) info.memory_map.push_back({Gpa{i << 20}, 1 << 20, 1});
    setup_header header{};
    header.cmdline_size = kernel_max;
    header.version = 0x020f;

    const bool has_nul = cmdline.find('\0') != std::string::npos;
    const bool too_long = cmdline.size() + 1 > x86::kCmdlineMax || (!pvh && cmdline.size() > kernel_max);
    const uint64_t pvh_capacity = (x86::kPvhModlist.value - x86::kPvhMemmap.value) / sizeof(x86::HvmMemmapTableEntry);
    const bool map_too_big = map_entries > (pvh ? pvh_capacity : E820_MAX_ENTRIES_ZEROPAGE);
    const bool must_fail = has_nul || too_long || map_too_big;

    sentinel_ram().fill();
    try {
        if (pvh) {
            x86::write_pvh_boot_info(memory(), info);
        } else {
            x86::write_linux_boot_info(memory(), header, info);
        }
    } catch (const keel::Error&) {
        check(must_fail);
        check(untouched(0, kRamSize));
        return 0;
    }
    check(!must_fail);
    const uint64_t at = x86::kCmdline.value;
    check(std::memcmp(ram() + at, cmdline.data(), cmdline.size()) == 0);
    check(ram()[at + cmdline.size()] == 0);
    check(untouched(at + cmdline.size() + 1, at + x86::kCmdlineMax));
    if (pvh) {
        x86::HvmStartInfo start{};
        std::memcpy(&start, ram() + x86::kPvhStartInfo.value, sizeof start);
        check(start.cmdline_paddr == at && start.memmap_entries == map_entries);
    } else {
        boot_params params{};
        std::memcpy(&params, ram() + x86::kZeroPage.value, sizeof params);
        check((uint64_t{params.ext_cmd_line_ptr} << 32 | params.hdr.cmd_line_ptr) == at);
        check(params.e820_entries == map_entries);
    }
    return 0;
}
