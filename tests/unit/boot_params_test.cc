#include <catch2/catch.hpp>

#include <asm/bootparam.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <new>
#include <string>
#include <vector>

#include "arch/x86_64/boot_params.h"
#include "arch/x86_64/e820.h"
#include "arch/x86_64/layout.h"
#include "common/error.h"
#include "loader/initrd.h"
#include "memory/guest_memory.h"

using namespace keel;
using namespace keel::x86;

namespace {

constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kGiB = 1024 * kMiB;

E820Entry ram(uint64_t start, uint64_t end) { return {Gpa(start), end - start, E820_RAM}; }
E820Entry reserved(uint64_t start, uint64_t end) { return {Gpa(start), end - start, E820_RESERVED}; }

std::vector<E820Entry> map_for(uint64_t size) { return build_e820_map(guest_ram_regions(size)); }

GuestMemory guest_memory(uint64_t size) {
    const auto regions = guest_ram_regions(size);
    return GuestMemory::create(regions);
}

setup_header linux_header(uint16_t version = 0x020f) {
    setup_header hdr{};
    hdr.boot_flag = 0xaa55;
    hdr.header = 0x53726448;
    hdr.version = version;
    hdr.loadflags = LOADED_HIGH;
    hdr.cmdline_size = 2047;
    hdr.xloadflags = XLF_KERNEL_64;
    return hdr;
}

BootInfo boot_info(uint64_t mem_size = 256 * kMiB) {
    BootInfo info;
    info.cmdline = "console=ttyS0 reboot=k panic=1";
    info.memory_map = map_for(mem_size);
    info.acpi_rsdp = kBiosAreaStart;
    return info;
}

// A file of `size` bytes (sparse unless `content` is given), removed on scope exit.
struct TempFile {
    std::filesystem::path path;
    explicit TempFile(uint64_t size, const std::string& content = {})
        : path(std::filesystem::temp_directory_path() /
               ("keel-initrd-test-" + std::to_string(::getpid()) + "-" + std::to_string(size))) {
        std::ofstream(path, std::ios::binary) << content;
        std::filesystem::resize_file(path, size);
    }
    ~TempFile() { std::filesystem::remove(path); }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
};

LoadedKernel kernel_ending_at(uint64_t end, uint64_t initrd_limit = 0x80000000) {
    LoadedKernel kernel;
    kernel.end = Gpa(end);
    kernel.initrd_limit = Gpa(initrd_limit);
    return kernel;
}

}  // namespace

// --- guest RAM regions and the e820 map ---

TEST_CASE("guest RAM stays below the MMIO hole and continues above 4 GiB", "[e820]") {
    using R = std::vector<MemoryRegionSpec>;
    const auto same = [](const R& a, const R& b) {
        return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](const auto& x, const auto& y) {
                   return x.start == y.start && x.size == y.size;
               });
    };
    CHECK(same(guest_ram_regions(256 * kMiB), R{{Gpa(0), 256 * kMiB}}));
    CHECK(same(guest_ram_regions(2 * kGiB), R{{Gpa(0), 2 * kGiB}}));
    CHECK(same(guest_ram_regions(3 * kGiB), R{{Gpa(0), 3 * kGiB}}));
    CHECK(same(guest_ram_regions(6 * kGiB), R{{Gpa(0), 3 * kGiB}, {Gpa(4 * kGiB), 3 * kGiB}}));
    CHECK_THROWS_WITH(guest_ram_regions(1 * kMiB), Catch::Contains("too small"));
    CHECK_THROWS_WITH(guest_ram_regions(256 * kMiB + 100), Catch::Contains("not a multiple of 4 KiB"));
}

TEST_CASE("the e820 map reserves the EBDA..1 MiB window and skips the MMIO hole", "[e820]") {
    CHECK(map_for(256 * kMiB) == std::vector<E820Entry>{ram(0, 0x9fc00), reserved(0x9fc00, 0x100000),
                                                        ram(0x100000, 256 * kMiB)});
    CHECK(map_for(2 * kGiB) == std::vector<E820Entry>{ram(0, 0x9fc00), reserved(0x9fc00, 0x100000),
                                                      ram(0x100000, 2 * kGiB)});
    CHECK(map_for(3 * kGiB) == std::vector<E820Entry>{ram(0, 0x9fc00), reserved(0x9fc00, 0x100000),
                                                      ram(0x100000, 3 * kGiB)});
    CHECK(map_for(6 * kGiB) == std::vector<E820Entry>{ram(0, 0x9fc00), reserved(0x9fc00, 0x100000),
                                                      ram(0x100000, 3 * kGiB), ram(4 * kGiB, 7 * kGiB)});
}

TEST_CASE("the e820 map of a GuestMemory matches its regions", "[e820]") {
    const auto mem = guest_memory(6 * kGiB);  // lazily mapped: costs no RAM
    CHECK(build_e820_map(mem) == map_for(6 * kGiB));
    CHECK(mem.total_size() == 6 * kGiB);
}

// --- boot_params (zero page) ---

TEST_CASE("the UAPI zero page has the layout boot.rst documents", "[boot_params]") {
    STATIC_REQUIRE(sizeof(boot_params) == 4096);
    STATIC_REQUIRE(offsetof(boot_params, hdr) == 0x1f1);
    STATIC_REQUIRE(offsetof(boot_params, e820_table) == 0x2d0);
    STATIC_REQUIRE(offsetof(boot_params, acpi_rsdp_addr) == 0x70);
}

TEST_CASE("boot_params carries the header, cmdline, e820 map and RSDP", "[boot_params]") {
    const BootInfo info = boot_info();
    const boot_params params = make_boot_params(linux_header(), info);
    CHECK(params.hdr.header == 0x53726448);
    CHECK(params.hdr.type_of_loader == 0xff);
    CHECK((params.hdr.loadflags & (LOADED_HIGH | CAN_USE_HEAP)) == (LOADED_HIGH | CAN_USE_HEAP));
    CHECK(params.hdr.heap_end_ptr == 0xfe00);
    CHECK(params.hdr.cmd_line_ptr == 0x20000);
    CHECK(params.ext_cmd_line_ptr == 0);
    CHECK(params.hdr.ramdisk_image == 0);
    CHECK(params.hdr.ramdisk_size == 0);
    CHECK(params.acpi_rsdp_addr == 0xe0000);
    REQUIRE(params.e820_entries == 3);
    CHECK(params.e820_table[1].addr == 0x9fc00);
    CHECK(params.e820_table[1].size == 0x100000 - 0x9fc00);
    CHECK(params.e820_table[1].type == E820_RESERVED);
    CHECK(params.e820_table[2].addr == 0x100000);
    CHECK(params.e820_table[2].size == 255 * kMiB);
    CHECK(params.e820_table[2].type == E820_RAM);
}

TEST_CASE("boot_params splits initrd address and size into low and ext_ halves", "[boot_params]") {
    BootInfo info = boot_info();
    info.initrd = LoadedInitrd{Gpa(0x0fe00000), 0x123000};
    auto params = make_boot_params(linux_header(), info);
    CHECK(params.hdr.ramdisk_image == 0x0fe00000);
    CHECK(params.hdr.ramdisk_size == 0x123000);
    CHECK(params.ext_ramdisk_image == 0);

    info.initrd = LoadedInitrd{Gpa(0x1'2000'0000), 0x1'0000'1000};
    params = make_boot_params(linux_header(), info);
    CHECK(params.hdr.ramdisk_image == 0x2000'0000);
    CHECK(params.ext_ramdisk_image == 1);
    CHECK(params.hdr.ramdisk_size == 0x1000);
    CHECK(params.ext_ramdisk_size == 1);
}

TEST_CASE("acpi_rsdp_addr is only set for boot protocol 2.14 and newer", "[boot_params]") {
    CHECK(make_boot_params(linux_header(0x020e), boot_info()).acpi_rsdp_addr == 0xe0000);
    CHECK(make_boot_params(linux_header(0x020d), boot_info()).acpi_rsdp_addr == 0);
}

// setup_header is packed: a loader may hold it at any address (found by
// kernel_cmdline_fuzzer, whose header sat at an odd one; UBSan objected).
TEST_CASE("make_boot_params reads a setup header at any alignment", "[boot_params]") {
    alignas(8) std::array<unsigned char, sizeof(setup_header) + 1> storage{};
    const setup_header* header = new (storage.data() + 1) setup_header(linux_header());
    CHECK(make_boot_params(*header, boot_info()).hdr.cmdline_size == 2047);
}

TEST_CASE("command lines longer than the kernel or keel accepts are refused", "[boot_params]") {
    BootInfo info = boot_info();
    info.cmdline = std::string(2047, 'x');
    CHECK_NOTHROW(make_boot_params(linux_header(), info));
    info.cmdline += "x";
    CHECK_THROWS_WITH(make_boot_params(linux_header(), info),
                      "kernel command line is 2048 bytes; this kernel accepts at most 2047 "
                      "(cmdline_size in its setup header)");
    info.cmdline = std::string(kCmdlineMax, 'x');
    CHECK_THROWS_WITH(make_hvm_start_info(info), Catch::Contains("longer than keel's limit of 65535"));
    info.cmdline = std::string("a\0b", 3);
    CHECK_THROWS_WITH(make_hvm_start_info(info), Catch::Contains("NUL byte"));
}

TEST_CASE("a memory map larger than the zero page holds is refused", "[boot_params]") {
    BootInfo info = boot_info();
    info.memory_map.assign(E820_MAX_ENTRIES_ZEROPAGE + 1, ram(0x100000, 0x200000));
    CHECK_THROWS_WITH(make_boot_params(linux_header(), info), Catch::Contains("more than the 128"));
    CHECK_NOTHROW(make_hvm_start_info(info));
    info.memory_map.resize(167, ram(0x100000, 0x200000));  // kPvhMemmap..kPvhModlist holds 166
    CHECK_THROWS_WITH(make_hvm_start_info(info), Catch::Contains("more than the 166 keel's PVH memmap holds"));
}

TEST_CASE("write_boot_info puts the zero page and cmdline where the layout says", "[boot_params]") {
    const auto mem = guest_memory(256 * kMiB);
    LoadedKernel kernel;
    kernel.protocol = BootProtocol::Linux64;
    kernel.setup = linux_header();
    write_boot_info(mem, kernel, boot_info());
    const auto params = mem.read_obj<boot_params>(kZeroPage);
    REQUIRE(params.has_value());
    CHECK(params->hdr.type_of_loader == 0xff);
    CHECK(params->e820_entries == 3);
    std::string cmdline(31, '\0');
    REQUIRE(mem.read(kCmdline, std::span(reinterpret_cast<uint8_t*>(cmdline.data()), cmdline.size())));
    CHECK(cmdline == std::string("console=ttyS0 reboot=k panic=1") + '\0');

    kernel.setup.reset();
    CHECK_THROWS_AS(write_boot_info(mem, kernel, boot_info()), Error);
}

// --- PVH start info ---

TEST_CASE("hvm_start_info has the layout of Xen's start_info.h", "[boot_params]") {
    STATIC_REQUIRE(offsetof(HvmStartInfo, modlist_paddr) == 16);
    STATIC_REQUIRE(offsetof(HvmStartInfo, rsdp_paddr) == 32);
    STATIC_REQUIRE(offsetof(HvmStartInfo, memmap_paddr) == 40);
    STATIC_REQUIRE(offsetof(HvmStartInfo, memmap_entries) == 48);
    STATIC_REQUIRE(kPvhStartInfo.value + sizeof(HvmStartInfo) <= kPvhMemmap.value);
}

TEST_CASE("PVH boot writes start info, memmap and the initrd module", "[boot_params]") {
    const auto mem = guest_memory(6 * kGiB);
    BootInfo info = boot_info(6 * kGiB);
    info.initrd = LoadedInitrd{Gpa(0xbf000000), 0x800000};
    LoadedKernel kernel;
    kernel.protocol = BootProtocol::Pvh;
    write_boot_info(mem, kernel, info);

    const auto start = mem.read_obj<HvmStartInfo>(kPvhStartInfo);
    REQUIRE(start.has_value());
    CHECK(start->magic == 0x336ec578);
    CHECK(start->version == 1);
    CHECK(start->cmdline_paddr == 0x20000);
    CHECK(start->rsdp_paddr == 0xe0000);
    CHECK(start->nr_modules == 1);
    CHECK(start->modlist_paddr == kPvhModlist.value);
    CHECK(start->memmap_paddr == kPvhMemmap.value);
    REQUIRE(start->memmap_entries == 4);

    const auto high = mem.read_obj<HvmMemmapTableEntry>(kPvhMemmap.unchecked_add(3 * sizeof(HvmMemmapTableEntry)));
    REQUIRE(high.has_value());
    CHECK(high->addr == 4 * kGiB);
    CHECK(high->size == 3 * kGiB);
    CHECK(high->type == 1);  // XEN_HVM_MEMMAP_TYPE_RAM
    const auto module = mem.read_obj<HvmModlistEntry>(kPvhModlist);
    REQUIRE(module.has_value());
    CHECK(module->paddr == 0xbf000000);
    CHECK(module->size == 0x800000);
}

TEST_CASE("PVH start info without an initrd lists no modules", "[boot_params]") {
    const HvmStartInfo start = make_hvm_start_info(boot_info());
    CHECK(start.nr_modules == 0);
    CHECK(start.modlist_paddr == 0);
    CHECK(start.memmap_entries == 3);
}

// --- initrd placement ---

TEST_CASE("the initrd goes to the highest page-aligned slot that fits", "[initrd]") {
    const auto mem = guest_memory(256 * kMiB);
    CHECK(find_initrd_slot(mem, 0x123456, Gpa(0x2000000), Gpa(0x80000000)) == Gpa(256 * kMiB - 0x124000));
    CHECK(find_initrd_slot(mem, 0x1000, Gpa(0x2000000), Gpa(0x8000800)) == Gpa(0x7fff000));  // limit below RAM top
    CHECK(find_initrd_slot(mem, 254 * kMiB, Gpa(0x2000000), Gpa(0x80000000)) == std::nullopt);
    CHECK(find_initrd_slot(mem, 0x1000, Gpa(256 * kMiB), Gpa(0x80000000)) == std::nullopt);
    CHECK(find_initrd_slot(mem, 0, Gpa(0x2000000), Gpa(0x80000000)) == std::nullopt);

    const auto big = guest_memory(6 * kGiB);
    // initrd_addr_max of 2 GiB - 1 keeps it low even with RAM above 4 GiB.
    CHECK(find_initrd_slot(big, 0x100000, Gpa(0x2000000), Gpa(0x80000000)) == Gpa(0x7ff00000));
    // PVH: below the MMIO hole, i.e. at the top of low RAM.
    CHECK(find_initrd_slot(big, 0x100000, Gpa(0x2000000), kMmioHoleStart) == Gpa(0xbff00000));
    // Unaligned kernel end: the slot starts at or above it.
    CHECK(find_initrd_slot(mem, 256 * kMiB - 0x2000000, Gpa(0x2000001), Gpa(0x80000000)) == std::nullopt);
}

TEST_CASE("load_initrd copies the file into guest memory", "[initrd]") {
    const auto mem = guest_memory(256 * kMiB);
    const TempFile file(10000, "initramfs!");
    const LoadedInitrd initrd = load_initrd(file.path.string(), mem, kernel_ending_at(0x1400000));
    CHECK(initrd.gpa == Gpa(256 * kMiB - 0x3000));
    CHECK(initrd.size == 10000);
    std::string head(10, '\0');
    REQUIRE(mem.read(initrd.gpa, std::span(reinterpret_cast<uint8_t*>(head.data()), head.size())));
    CHECK(head == "initramfs!");
}

TEST_CASE("an initrd that does not fit is refused with its size", "[initrd]") {
    const auto mem = guest_memory(256 * kMiB);
    const TempFile file(300 * kMiB);
    CHECK_THROWS_WITH(load_initrd(file.path.string(), mem, kernel_ending_at(0x4378000)),
                      "initrd '" + file.path.string() +
                          "' (300 MiB) does not fit in guest memory (256 MiB) below 0x80000000 and above the "
                          "kernel's end at 0x4378000; give the VM more memory");
    const TempFile empty(0);
    CHECK_THROWS_WITH(load_initrd(empty.path.string(), mem, kernel_ending_at(0x4378000)), Catch::Contains("is empty"));
    CHECK_THROWS_WITH(load_initrd("/nonexistent/initrd.img", mem, kernel_ending_at(0x4378000)),
                      "cannot open initrd '/nonexistent/initrd.img': No such file or directory");
}
