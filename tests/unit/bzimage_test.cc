#include <catch2/catch.hpp>

#include <asm/bootparam.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "arch/x86_64/layout.h"
#include "common/error.h"
#include "loader/bzimage.h"
#include "loader/image_file.h"
#include "loader/kernel_loader.h"
#include "memory/guest_memory.h"

using namespace keel;

namespace {

constexpr uint64_t kMiB = 1024 * 1024;
constexpr size_t kSetupSects = 4;
constexpr size_t kSetupBytes = (kSetupSects + 1) * 512;
constexpr size_t kPayloadBytes = 64 * 1024;

// A minimal but complete bzImage: a 5-sector setup with a protocol 2.15
// header, followed by a recognisable protected-mode "kernel".
std::vector<uint8_t> make_bzimage() {
    std::vector<uint8_t> image(kSetupBytes + kPayloadBytes, 0);
    setup_header hdr{};
    hdr.setup_sects = kSetupSects;
    hdr.syssize = kPayloadBytes / 16;
    hdr.boot_flag = 0xaa55;
    hdr.jump = 0x6aeb;  // "jmp 0x26c": the header ends at 0x202 + 0x6a
    hdr.header = 0x53726448;
    hdr.version = 0x020f;
    hdr.loadflags = LOADED_HIGH;
    hdr.initrd_addr_max = 0x7fffffff;
    hdr.kernel_alignment = 0x200000;
    hdr.relocatable_kernel = 1;
    hdr.xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G;
    hdr.cmdline_size = 2047;
    hdr.pref_address = 0x1000000;
    hdr.init_size = 0x400000;
    std::memcpy(image.data() + kSetupHeaderOffset, &hdr, sizeof hdr);
    for (size_t i = kSetupBytes; i < image.size(); ++i) image[i] = static_cast<uint8_t>(i * 7);
    return image;
}

setup_header header_of(const std::vector<uint8_t>& image) {
    setup_header hdr{};
    std::memcpy(&hdr, image.data() + kSetupHeaderOffset, sizeof hdr);
    return hdr;
}

template <typename Edit>
std::vector<uint8_t> edited(Edit edit) {
    auto image = make_bzimage();
    setup_header hdr = header_of(image);
    edit(hdr);
    std::memcpy(image.data() + kSetupHeaderOffset, &hdr, sizeof hdr);
    return image;
}

std::span<const uint8_t> bytes_of(const std::string& text) {
    return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

GuestMemory guest_ram(uint64_t size) { return GuestMemory::create({{Gpa(0), size}}); }

}  // namespace

TEST_CASE("a synthetic bzImage parses and exposes its setup header", "[bzimage]") {
    const auto image = make_bzimage();
    REQUIRE(detect_kernel_format(image) == KernelFormat::BzImage);
    const BzImage bz = parse_bzimage(image, "bz");
    CHECK(bz.payload_offset == kSetupBytes);
    CHECK(bz.payload_size == kPayloadBytes);
    CHECK(bz.header.version == 0x020f);
    CHECK(bz.header.cmdline_size == 2047);
    CHECK(boot_protocol_string(bz.header.version) == "2.15");
    CHECK(boot_protocol_string(0x0206) == "2.06");
}

TEST_CASE("bzImage header bytes past the declared header end are not trusted", "[bzimage]") {
    // Protocol 2.12 header ending right after init_size (0x264): kernel_info_offset is code.
    auto image = edited([](setup_header& h) {
        h.version = 0x020c;
        h.kernel_info_offset = 0xdeadbeef;
    });
    image[0x201] = 0x62;
    CHECK(parse_bzimage(image, "bz").header.kernel_info_offset == 0);
    image[0x201] = 0x50;  // ends before pref_address/init_size
    CHECK_THROWS_WITH(parse_bzimage(image, "bz"), Catch::Contains("setup header that ends at 0x252"));
}

TEST_CASE("bzImage layout follows boot.rst's runtime start rule", "[bzimage]") {
    const auto relocatable = parse_bzimage(make_bzimage(), "bz");
    const auto layout = bzimage_layout(relocatable, x86::kHighMemStart, "bz");
    CHECK(layout.entry64 == Gpa(0x100200));
    CHECK(layout.runtime_start == Gpa(0x1000000));  // load < pref_address: pref_address
    CHECK(layout.end == Gpa(0x1400000));

    const auto no_pref = parse_bzimage(edited([](setup_header& h) { h.pref_address = 0; }), "bz");
    CHECK(bzimage_layout(no_pref, x86::kHighMemStart, "bz").runtime_start == Gpa(0x200000));  // aligned up

    const auto fixed = parse_bzimage(edited([](setup_header& h) { h.relocatable_kernel = 0; }), "bz");
    CHECK(bzimage_layout(fixed, x86::kHighMemStart, "bz").runtime_start == Gpa(0x1000000));

    const auto wraps = parse_bzimage(edited([](setup_header& h) { h.pref_address = ~0ull - 0x1000; }), "bz");
    CHECK_THROWS_WITH(bzimage_layout(wraps, x86::kHighMemStart, "bz"), Catch::Contains("overflows"));
}

TEST_CASE("a bzImage loads its protected-mode kernel at 1 MiB", "[bzimage]") {
    const auto image = make_bzimage();
    auto mem = guest_ram(64 * kMiB);
    const LoadedKernel kernel = load_kernel_image(image, mem, "bz");
    CHECK(kernel.protocol == BootProtocol::Linux64);
    CHECK(kernel.entry == Gpa(0x100200));
    CHECK(kernel.end == Gpa(0x1400000));
    CHECK(kernel.initrd_limit == Gpa(0x80000000));
    REQUIRE(kernel.setup.has_value());
    CHECK(kernel.setup->init_size == 0x400000);
    std::vector<uint8_t> loaded(kPayloadBytes);
    REQUIRE(mem.read(x86::kHighMemStart, loaded));
    CHECK(std::equal(loaded.begin(), loaded.end(), image.begin() + kSetupBytes));
}

TEST_CASE("a bzImage whose decompression area exceeds guest RAM is refused", "[bzimage]") {
    auto mem = guest_ram(16 * kMiB);  // init_size would need [16 MiB, 20 MiB)
    CHECK_THROWS_WITH(load_kernel_image(make_bzimage(), mem, "bz"),
                      Catch::Contains("needs 4 MiB of guest memory at 0x1000000 to decompress"));
}

TEST_CASE("corrupted bzImages are refused with a specific message", "[bzimage]") {
    auto mem = guest_ram(64 * kMiB);
    const auto refuses = [&](const std::vector<uint8_t>& image, const std::string& message) {
        INFO(message);
        CHECK_THROWS_WITH(load_kernel_image(image, mem, "bz"), Catch::Contains(message));
    };
    refuses(edited([](setup_header& h) { h.boot_flag = 0x1234; }), "boot_flag at 0x1fe is 0x1234");
    refuses(edited([](setup_header& h) { h.header = 0x53726449; }), "no \"HdrS\" magic at offset 0x202");
    refuses(edited([](setup_header& h) { h.version = 0x0204; }), "boot protocol 2.04, which is too old");
    refuses(edited([](setup_header& h) { h.version = 0x020a; }), "no 64-bit entry point: boot protocol 2.10");
    refuses(edited([](setup_header& h) { h.xloadflags = 0; }), "XLF_KERNEL_64 is not set");
    refuses(edited([](setup_header& h) { h.loadflags = 0; }), "is a zImage");
    refuses(edited([](setup_header& h) { h.kernel_alignment = 0x3000; }), "invalid kernel_alignment 0x3000");
    refuses(edited([](setup_header& h) { h.init_size = 0; }), "init_size 0");
    refuses(edited([](setup_header& h) { h.syssize = 0; }), "empty protected-mode kernel");
    refuses(edited([](setup_header& h) { h.syssize = kPayloadBytes / 16 + 1; }), "is truncated");
    refuses(edited([](setup_header& h) { h.syssize = 0xffffffff; }), "is truncated");

    auto huge_setup = edited([](setup_header& h) { h.setup_sects = 255; });
    huge_setup.resize(100 * 1024);
    refuses(huge_setup, "setup code needs 131072 bytes (setup_sects 255)");

    auto truncated = make_bzimage();
    truncated.resize(kSetupBytes + kPayloadBytes / 2);
    refuses(truncated, "is truncated: the protected-mode kernel needs 65536 bytes");

    auto header_only = make_bzimage();
    header_only.resize(0x240);
    refuses(header_only, "is truncated: 576 bytes");
}

TEST_CASE("setup_sects 0 means 4", "[bzimage]") {
    const auto bz = parse_bzimage(edited([](setup_header& h) { h.setup_sects = 0; }), "bz");
    CHECK(bz.payload_offset == 5 * 512);
}

TEST_CASE("empty, text and unknown files are not kernels", "[bzimage]") {
    auto mem = guest_ram(4 * kMiB);
    CHECK_THROWS_WITH(load_kernel_image({}, mem, "k"), "kernel image 'k' is empty");
    CHECK_THROWS_WITH(load_kernel_image(bytes_of("#!/bin/sh\necho hello\n"), mem, "k"),
                      "kernel image 'k' is neither a bzImage nor an ELF vmlinux "
                      "(starts with 23 21 2f 62 69 6e 2f 73 \"#!/bin/s\")");
    const std::vector<uint8_t> gzip{0x1f, 0x8b, 0x08, 0x00};
    CHECK_THROWS_WITH(load_kernel_image(gzip, mem, "k"), Catch::Contains("(starts with 1f 8b 08 00)"));
    CHECK(detect_kernel_format(gzip) == KernelFormat::Unknown);
}

TEST_CASE("load_kernel names the file it cannot open", "[bzimage]") {
    auto mem = guest_ram(4 * kMiB);
    CHECK_THROWS_WITH(load_kernel("/nonexistent/vmlinuz", mem),
                      "cannot open kernel image '/nonexistent/vmlinuz': No such file or directory");
    CHECK_THROWS_WITH(load_kernel("/", mem), "kernel image '/' is not a regular file");
}

TEST_CASE("load_kernel reads a bzImage from disk", "[bzimage]") {
    const auto path = std::filesystem::temp_directory_path() / ("keel-bzimage-test-" + std::to_string(::getpid()));
    const auto image = make_bzimage();
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(image.data()),
                                                static_cast<std::streamsize>(image.size()));
    auto mem = guest_ram(64 * kMiB);
    const LoadedKernel kernel = load_kernel(path.string(), mem);
    std::filesystem::remove(path);
    CHECK(kernel.entry == Gpa(0x100200));
}

TEST_CASE("a real bzImage (KEEL_TEST_KERNEL) parses and loads", "[bzimage]") {
    const char* path = std::getenv("KEEL_TEST_KERNEL");
    if (path == nullptr || *path == '\0') {
        WARN("SKIPPED: set KEEL_TEST_KERNEL to a bzImage, e.g. "
             "$(guest-images/fetch-debian-kernel cloud-amd64)/boot/vmlinuz-*");
        return;
    }
    const auto image = read_whole_file(path, "kernel image", kMaxKernelImageSize);
    REQUIRE(detect_kernel_format(image) == KernelFormat::BzImage);
    const BzImage bz = parse_bzimage(image, path);
    CHECK(bz.header.version >= 0x020c);
    CHECK((bz.header.xloadflags & XLF_KERNEL_64) != 0);
    CHECK(bz.payload_size >= uint64_t{bz.header.syssize} * 16);
    CHECK(bz.header.init_size > 0);

    auto mem = guest_ram(256 * kMiB);
    const LoadedKernel kernel = load_kernel(path, mem);
    CHECK(kernel.entry == Gpa(0x100200));
    CHECK(kernel.end.value > x86::kHighMemStart.value + bz.payload_size);
    std::vector<uint8_t> start(4096);
    REQUIRE(mem.read(x86::kHighMemStart, start));
    CHECK(std::equal(start.begin(), start.end(), image.begin() + static_cast<std::ptrdiff_t>(bz.payload_offset)));
}
