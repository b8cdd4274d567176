#include "arch/x86_64/acpi/pci_acpi.h"

#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "arch/x86_64/acpi/acpi_builder.h"
#include "arch/x86_64/acpi/acpi_tables.h"
#include "arch/x86_64/acpi/aml.h"
#include "arch/x86_64/layout.h"
#include "common/error.h"
#include "memory/guest_memory.h"

using namespace keel;
using namespace keel::x86;
using namespace keel::x86::acpi;
using Bytes = aml::Bytes;

namespace {

template <typename T>
T read_at(const std::vector<uint8_t>& bytes, size_t offset) {
    REQUIRE(offset + sizeof(T) <= bytes.size());
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

template <typename T>
T val(T value) {
    return value;
}

bool contains(const std::vector<uint8_t>& haystack, const std::vector<uint8_t>& needle) {
    return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) != haystack.end();
}

std::vector<uint8_t> text(std::string_view s) {
    return {s.begin(), s.end()};
}

AcpiImage image(std::optional<PciHostBridgeConfig> pci) {
    AcpiConfig config;
    config.apic_ids = {0, 1};
    config.pci = std::move(pci);
    return build_acpi_tables(config, kBiosAreaStart);
}

std::vector<uint8_t> table_at(const AcpiImage& image, Gpa gpa) {
    const size_t offset = gpa.value - image.layout.rsdp.value;
    const auto header = read_at<SdtHeader>(image.bytes, offset);
    return {image.bytes.begin() + static_cast<ptrdiff_t>(offset),
            image.bytes.begin() + static_cast<ptrdiff_t>(offset + header.length)};
}

uint8_t sum(const std::vector<uint8_t>& bytes) {
    return byte_sum(bytes);
}

}  // namespace

TEST_CASE("WordBusNumber and DWordMemory encode as iasl does", "[pci][acpi][aml]") {
    // WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0, 0, 1)
    aml::ResourceTemplate buses;
    buses.word_bus_number(0, 0);
    CHECK(buses.encode() == Bytes{0x11, 0x15, 0x0a, 0x12, 0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00,
                                  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x79, 0x00});
    // DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,
    //              0, 0xC1000000, 0xCFFFFFFF, 0, 0x0F000000)
    aml::ResourceTemplate window;
    window.dword_memory_window(0xc100'0000, 0x0f00'0000);
    CHECK(window.encode() == Bytes{0x11, 0x1f, 0x0a, 0x1c, 0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0x00,
                                   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc1, 0xff, 0xff, 0xff, 0xcf,
                                   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x79, 0x00});
    CHECK_THROWS_AS(aml::ResourceTemplate().word_bus_number(2, 1), Error);
    CHECK_THROWS_AS(aml::ResourceTemplate().dword_memory_window(0xffff'f000, 0x2000), Error);
    CHECK_THROWS_AS(aml::ResourceTemplate().dword_memory_window(0xc000'0000, 0), Error);
}

TEST_CASE("the MCFG describes bus 0's ECAM and sums to zero", "[pci][acpi]") {
    const auto mcfg = build_mcfg(PciHostBridgeConfig{});
    REQUIRE(mcfg.size() == 60);
    CHECK(sum(mcfg) == 0);
    const auto header = read_at<McfgHeader>(mcfg, 0);
    CHECK(header.header.signature == kAcpiSigMcfg);
    CHECK(val(header.header.length) == 60);
    CHECK(header.header.revision == 1);
    const auto allocation = read_at<McfgAllocation>(mcfg, sizeof(McfgHeader));
    CHECK(val(allocation.base_address) == kPciEcamStart.value);
    CHECK(val(allocation.segment) == 0);
    CHECK(allocation.start_bus == 0);
    CHECK(allocation.end_bus == 0);
}

TEST_CASE("without PCI the tables are exactly those of a machine without it", "[pci][acpi]") {
    const AcpiImage plain = image(std::nullopt);
    CHECK(plain.layout.mcfg.value == 0);
    CHECK(table_at(plain, plain.layout.xsdt).size() == sizeof(SdtHeader) + 2 * 8);
    const auto dsdt = table_at(plain, plain.layout.dsdt);
    CHECK_FALSE(contains(dsdt, text("PCI0")));
}

TEST_CASE("with PCI the XSDT lists the MCFG and the DSDT holds PCI0 and the ECAM reservation", "[pci][acpi]") {
    const AcpiImage with_pci = image(PciHostBridgeConfig{});
    REQUIRE(with_pci.layout.mcfg.value != 0);
    CHECK(with_pci.layout.mcfg.value % 16 == 0);
    const auto xsdt = table_at(with_pci, with_pci.layout.xsdt);
    REQUIRE(xsdt.size() == sizeof(SdtHeader) + 3 * 8);
    CHECK(sum(xsdt) == 0);
    CHECK(read_at<uint64_t>(xsdt, 36 + 16) == with_pci.layout.mcfg.value);
    const auto mcfg = table_at(with_pci, with_pci.layout.mcfg);
    CHECK(mcfg == build_mcfg(PciHostBridgeConfig{}));
    const auto dsdt = table_at(with_pci, with_pci.layout.dsdt);
    CHECK(sum(dsdt) == 0);
    CHECK(contains(dsdt, text("PCI0")));
    CHECK(contains(dsdt, text("ECAM")));
    CHECK(contains(dsdt, {0x0c, 0x41, 0xd0, 0x0a, 0x08}));  // EisaId("PNP0A08")
    CHECK(contains(dsdt, {0x0c, 0x41, 0xd0, 0x0a, 0x03}));  // EisaId("PNP0A03")
    CHECK(contains(dsdt, {0x0c, 0x41, 0xd0, 0x0c, 0x02}));  // EisaId("PNP0C02")
    CHECK(with_pci.layout.size == with_pci.layout.mcfg.value + mcfg.size() - with_pci.layout.rsdp.value);
}

TEST_CASE("PCI descriptions that cannot be expressed are refused", "[pci][acpi]") {
    PciHostBridgeConfig bad_window;
    bad_window.mmio_window_start = Gpa(0xffff'0000);
    bad_window.mmio_window_size = 0x2'0000;
    CHECK_THROWS_AS(pci_host_bridge_devices(bad_window), Error);
    PciHostBridgeConfig bad_buses;
    bad_buses.bus_start = 2;
    bad_buses.bus_end = 1;
    CHECK_THROWS_AS(build_mcfg(bad_buses), Error);
    PciHostBridgeConfig bad_ecam;
    bad_ecam.ecam_base = Gpa(0xe000'1000);
    CHECK_THROWS_AS(build_mcfg(bad_ecam), Error);
    PciHostBridgeConfig bad_route;
    bad_route.intx_routes = {{.slot = 32, .pin = 0, .gsi = 16}};
    CHECK_THROWS_AS(pci_host_bridge_devices(bad_route), Error);
    bad_route.intx_routes = {{.slot = 1, .pin = 4, .gsi = 16}};
    CHECK_THROWS_AS(pci_host_bridge_devices(bad_route), Error);
}

// --- Cross-checks with iasl (Debian's acpica-tools), when it is installed ---

namespace {

bool have_iasl() {
    return std::system("command -v iasl >/dev/null 2>&1") == 0;
}

struct TempDir {
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "keel-pci-acpi-XXXXXX").string();
        REQUIRE(mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::filesystem::path path;
};

std::string read_text(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

int run_iasl(const std::filesystem::path& dir, const std::string& args, std::string& log) {
    const std::string command = "cd '" + dir.string() + "' && iasl " + args + " > iasl.log 2>&1";
    const int status = std::system(command.c_str());
    log = read_text(dir / "iasl.log");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string hex(uint64_t value) {
    char buffer[24];
    std::snprintf(buffer, sizeof buffer, "0x%llX", static_cast<unsigned long long>(value));
    return buffer;
}

PciHostBridgeConfig with_routes() {
    PciHostBridgeConfig config;
    config.intx_routes = {{.slot = 1, .pin = 0, .gsi = 16}, {.slot = 2, .pin = 3, .gsi = 17}};
    return config;
}

}  // namespace

TEST_CASE("iasl disassembles the MCFG and a DSDT with PCI0 without complaint", "[pci][acpi][iasl]") {
    if (!have_iasl()) {
        WARN("iasl not installed (apt-get install acpica-tools): skipped");
        return;
    }
    const AcpiImage tables = image(with_routes());
    TempDir dir;
    const std::pair<const char*, Gpa> files[] = {{"mcfg", tables.layout.mcfg}, {"dsdt", tables.layout.dsdt}};
    for (const auto& [name, gpa] : files) {
        const auto bytes = table_at(tables, gpa);
        std::ofstream(dir.path / (std::string(name) + ".dat"), std::ios::binary)
            .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        std::string log;
        const int status = run_iasl(dir.path, std::string("-d ") + name + ".dat", log);
        const std::string dsl = read_text(dir.path / (std::string(name) + ".dsl"));
        INFO(name << ":\n" << log << dsl);
        CHECK(status == 0);
        CHECK(log.find("rror") == std::string::npos);
        CHECK(log.find("arning") == std::string::npos);
        CHECK(dsl.find("Invalid") == std::string::npos);
        CHECK(dsl.find("Incorrect") == std::string::npos);
    }
    const std::string mcfg = read_text(dir.path / "mcfg.dsl");
    CHECK(mcfg.find("Base Address : 00000000E0000000") != std::string::npos);
    CHECK(mcfg.find("End Bus Number : 00") != std::string::npos);
    const std::string dsdt = read_text(dir.path / "dsdt.dsl");
    CHECK(dsdt.find("EisaId (\"PNP0A08\")") != std::string::npos);
    CHECK(dsdt.find("WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,") != std::string::npos);
    CHECK(dsdt.find("DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,") !=
          std::string::npos);
    CHECK(dsdt.find("EisaId (\"PNP0C02\")") != std::string::npos);
}

TEST_CASE("PCI0 and its ECAM reservation are byte-identical to iasl's compilation", "[pci][acpi][iasl]") {
    if (!have_iasl()) {
        WARN("iasl not installed (apt-get install acpica-tools): skipped");
        return;
    }
    const PciHostBridgeConfig config = with_routes();
    const uint64_t window_end = kPciMmioWindowStart.value + kPciMmioWindowSize - 1;
    // The same platform written independently in ASL from layout.h (COM1 and
    // the i8042 as in acpi_test.cc, which checks them on their own).
    // clang-format off
    const std::string asl =
        "DefinitionBlock (\"\", \"DSDT\", 2, \"KEEL  \", \"KEELVMM \", 1)\n{\n"
        "  Name (_S5, Package () { " + std::to_string(kAcpiS5SleepType) + ", 0, 0, 0 })\n"
        "  Scope (\\_SB) {\n"
        "    Device (COM1) {\n"
        "      Name (_HID, EisaId (\"PNP0501\"))\n"
        "      Name (_UID, 1)\n"
        "      Name (_CRS, ResourceTemplate () {\n"
        "        IO (Decode16, " + hex(kSerialCom1Port) + ", " + hex(kSerialCom1Port) + ", 1, " +
        hex(kSerialPortCount) + ")\n"
        "        IRQNoFlags () {" + std::to_string(kSerialCom1Irq) + "}\n"
        "      })\n"
        "    }\n"
        "    Device (KBD) {\n"
        "      Name (_HID, EisaId (\"PNP0303\"))\n"
        "      Name (_CRS, ResourceTemplate () {\n"
        "        IO (Decode16, " + hex(kI8042DataPort) + ", " + hex(kI8042DataPort) + ", 1, 1)\n"
        "        IO (Decode16, " + hex(kI8042CommandPort) + ", " + hex(kI8042CommandPort) + ", 1, 1)\n"
        "        IRQNoFlags () {" + std::to_string(kI8042KeyboardIrq) + "}\n"
        "      })\n"
        "    }\n"
        "    Device (PCI0) {\n"
        "      Name (_HID, EisaId (\"PNP0A08\"))\n"
        "      Name (_CID, EisaId (\"PNP0A03\"))\n"
        "      Name (_SEG, 0)\n"
        "      Name (_BBN, 0)\n"
        "      Name (_UID, 0)\n"
        "      Name (_CRS, ResourceTemplate () {\n"
        "        WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0, 0, 1)\n"
        "        IO (Decode16, 0x0CF8, 0x0CF8, 1, 8)\n"
        "        DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,\n"
        "                     0, " + hex(kPciMmioWindowStart.value) + ", " + hex(window_end) + ", 0, " +
        hex(kPciMmioWindowSize) + ")\n"
        "      })\n"
        "      Name (_PRT, Package () {\n"
        "        Package () { 0x0001FFFF, 0, 0, 16 },\n"
        "        Package () { 0x0002FFFF, 3, 0, 17 },\n"
        "      })\n"
        "    }\n"
        "    Device (ECAM) {\n"
        "      Name (_HID, EisaId (\"PNP0C02\"))\n"
        "      Name (_UID, 0)\n"
        "      Name (_CRS, ResourceTemplate () {\n"
        "        Memory32Fixed (ReadWrite, " + hex(kPciEcamStart.value) + ", " + hex(kPciEcamUsedSize) + ")\n"
        "      })\n"
        "    }\n"
        "  }\n}\n";
    // clang-format on
    TempDir dir;
    std::ofstream(dir.path / "keel.asl") << asl;
    std::string log;
    INFO(asl << log);
    REQUIRE(run_iasl(dir.path, "keel.asl", log) == 0);
    CHECK(log.find(" 0 Errors, 0 Warnings") != std::string::npos);
    const std::string compiled = read_text(dir.path / "keel.aml");
    REQUIRE(compiled.size() > sizeof(SdtHeader));
    const std::vector<uint8_t> expected(compiled.begin() + sizeof(SdtHeader), compiled.end());
    CHECK(build_dsdt_aml(pci_host_bridge_devices(config)) == expected);
}
