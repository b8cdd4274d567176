#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "platform_fixtures.h"
#include "arch/x86_64/acpi/acpi_builder.h"
#include "arch/x86_64/acpi/acpi_tables.h"
#include "arch/x86_64/acpi/aml.h"
#include "arch/x86_64/layout.h"
#include "common/error.h"

using namespace keel;
using namespace keel::x86;
using namespace keel::x86::acpi;

using keel::test::dense_ids;
using keel::test::low_memory;
using keel::test::read_bytes;

namespace {

// A copy of a packed wire-struct field: Catch binds CHECK operands by
// reference, and a reference to a misaligned field is undefined behaviour.
template <typename T>
T val(T value) {
    return value;
}

// The whole table at `gpa`, its length taken from its header.
std::vector<uint8_t> read_table(const GuestMemory& mem, Gpa gpa) {
    const auto header = mem.read_obj<SdtHeader>(gpa);
    REQUIRE(header.has_value());
    REQUIRE(val(header->length) >= sizeof(SdtHeader));
    return read_bytes(mem, gpa, header->length);
}

template <typename T>
T read_at(const std::vector<uint8_t>& bytes, size_t offset) {
    REQUIRE(offset + sizeof(T) <= bytes.size());
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

bool contains(const std::vector<uint8_t>& haystack, std::string_view needle) {
    return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) != haystack.end();
}

struct ParsedMadt {
    MadtHeader header;
    std::vector<MadtLocalApic> lapics;
    std::vector<MadtIoApic> ioapics;
    std::vector<MadtInterruptSourceOverride> overrides;
    std::vector<MadtLocalApicNmi> nmis;
};

ParsedMadt parse_madt(const std::vector<uint8_t>& table) {
    ParsedMadt madt{read_at<MadtHeader>(table, 0), {}, {}, {}, {}};
    for (size_t offset = sizeof(MadtHeader); offset < table.size();) {
        const uint8_t type = table.at(offset);
        const uint8_t length = table.at(offset + 1);
        REQUIRE(length >= 2);
        if (type == kMadtTypeLocalApic) madt.lapics.push_back(read_at<MadtLocalApic>(table, offset));
        if (type == kMadtTypeIoApic) madt.ioapics.push_back(read_at<MadtIoApic>(table, offset));
        if (type == kMadtTypeInterruptSourceOverride) {
            madt.overrides.push_back(read_at<MadtInterruptSourceOverride>(table, offset));
        }
        if (type == kMadtTypeLocalApicNmi) madt.nmis.push_back(read_at<MadtLocalApicNmi>(table, offset));
        offset += length;
        REQUIRE(offset <= table.size());
    }
    return madt;
}

struct Written {
    GuestMemory mem;
    AcpiLayout layout;
};

Written write_tables(std::vector<uint32_t> apic_ids, std::vector<AmlDevice> devices = {}) {
    auto mem = low_memory();
    const AcpiLayout layout = write_acpi_tables(mem, AcpiConfig{std::move(apic_ids), std::move(devices)});
    return {std::move(mem), layout};
}

}  // namespace

TEST_CASE("the RSDP sits at 0xe0000 with both checksums and points at the XSDT", "[acpi]") {
    const auto [mem, layout] = write_tables(dense_ids(1));
    CHECK(layout.rsdp == kBiosAreaStart);
    const auto bytes = read_bytes(mem, layout.rsdp, sizeof(Rsdp));
    const auto rsdp = read_at<Rsdp>(bytes, 0);
    CHECK(rsdp.signature == kAcpiSigRsdp);
    CHECK(rsdp.revision == 2);
    CHECK(val(rsdp.length) == 36);
    CHECK(rsdp.oem_id == kOemId);
    CHECK(val(rsdp.xsdt_address) == layout.xsdt.value);
    CHECK(byte_sum(std::span(bytes).first(20)) == 0);
    CHECK(byte_sum(bytes) == 0);
}

TEST_CASE("every table sums to zero and is as long as its header says", "[acpi]") {
    const auto [mem, layout] = write_tables(dense_ids(4));
    const std::pair<Gpa, std::array<char, 4>> tables[] = {
        {layout.xsdt, kAcpiSigXsdt}, {layout.fadt, kAcpiSigFadt}, {layout.madt, kAcpiSigMadt},
        {layout.dsdt, kAcpiSigDsdt}};
    for (const auto& [gpa, signature] : tables) {
        const auto table = read_table(mem, gpa);
        const auto header = read_at<SdtHeader>(table, 0);
        INFO(std::string(signature.begin(), signature.end()));
        CHECK(header.signature == signature);
        CHECK(byte_sum(table) == 0);
        CHECK(header.oem_id == kOemId);
        CHECK(header.oem_table_id == kOemTableId);
        CHECK(header.creator_id == kCreatorId);
        CHECK(gpa.value % 16 == 0);
        CHECK(gpa.value + table.size() <= layout.rsdp.value + layout.size);
    }
    CHECK(read_table(mem, layout.fadt).size() == 276);
    CHECK(read_table(mem, layout.madt).size() == 44 + 4 * 8 + 12 + 10 + 6);
    CHECK(layout.size <= kAcpiTablesMaxSize);
}

TEST_CASE("the XSDT lists the FADT and the MADT, and the FADT points at the DSDT", "[acpi]") {
    const auto [mem, layout] = write_tables(dense_ids(2));
    const auto xsdt = read_table(mem, layout.xsdt);
    REQUIRE(xsdt.size() == sizeof(SdtHeader) + 2 * 8);
    CHECK(read_at<uint64_t>(xsdt, 36) == layout.fadt.value);
    CHECK(read_at<uint64_t>(xsdt, 44) == layout.madt.value);
    CHECK(mem.read_obj<SdtHeader>(layout.fadt)->signature == kAcpiSigFadt);
    CHECK(mem.read_obj<SdtHeader>(layout.madt)->signature == kAcpiSigMadt);

    const auto fadt = mem.read_obj<Fadt>(layout.fadt).value();
    CHECK(val(fadt.x_dsdt) == layout.dsdt.value);
    CHECK(val(fadt.dsdt) == 0);
    CHECK(mem.read_obj<SdtHeader>(layout.dsdt)->signature == kAcpiSigDsdt);
}

TEST_CASE("the FADT declares a hardware-reduced platform with keel's sleep and reset ports", "[acpi]") {
    const auto [mem, layout] = write_tables(dense_ids(1));
    const auto fadt = mem.read_obj<Fadt>(layout.fadt).value();
    CHECK(fadt.header.revision == 6);
    CHECK(fadt.minor_version == 4);
    CHECK(val(fadt.flags) == (kFadtFlagHwReducedAcpi | kFadtFlagPwrButton | kFadtFlagSlpButton | kFadtFlagResetRegSup));
    CHECK((val(fadt.iapc_boot_arch) & kIapcBootArch8042) != 0);
    CHECK((val(fadt.iapc_boot_arch) & kIapcBootArchVgaNotPresent) != 0);
    CHECK((val(fadt.iapc_boot_arch) & kIapcBootArchCmosRtcNotPresent) != 0);
    CHECK((val(fadt.iapc_boot_arch) & kIapcBootArchMsiNotSupported) == 0);

    auto check_io_byte = [](const GenericAddress& reg, uint16_t port) {
        CHECK(reg.address_space_id == kAddressSpaceSystemIo);
        CHECK(reg.register_bit_width == 8);
        CHECK(reg.register_bit_offset == 0);
        CHECK(reg.access_size == kAccessSizeByte);
        CHECK(val(reg.address) == port);
    };
    check_io_byte(fadt.sleep_control_reg, kAcpiSleepControlPort);
    check_io_byte(fadt.sleep_status_reg, kAcpiSleepStatusPort);
    check_io_byte(fadt.reset_reg, kAcpiResetPort);
    CHECK(fadt.reset_value == kAcpiResetValue);
    // No fixed hardware: no SCI, PM1 blocks, PM timer or FACS.
    CHECK(val(fadt.sci_int) == 0);
    CHECK(val(fadt.pm1a_evt_blk) == 0);
    CHECK(val(fadt.pm_tmr_blk) == 0);
    CHECK(val(fadt.x_pm1a_cnt_blk.address) == 0);
    CHECK(val(fadt.x_firmware_ctrl) == 0);
    CHECK(fadt.hypervisor_vendor_id == kHypervisorVendorId);
}

TEST_CASE("the MADT lists one enabled local APIC per vCPU", "[acpi]") {
    const uint32_t vcpus = GENERATE(1u, 4u, 254u);
    const auto [mem, layout] = write_tables(dense_ids(vcpus));
    const auto table = read_table(mem, layout.madt);
    CHECK(byte_sum(table) == 0);
    CHECK(table.size() == 44 + vcpus * 8 + 12 + 10 + 6);
    const ParsedMadt madt = parse_madt(table);
    CHECK(val(madt.header.local_apic_address) == kLapicStart.value);
    REQUIRE(madt.lapics.size() == vcpus);
    for (uint32_t i = 0; i < vcpus; ++i) {
        CHECK(madt.lapics[i].processor_uid == i);
        CHECK(madt.lapics[i].apic_id == i);
        CHECK(val(madt.lapics[i].flags) == kMadtLocalApicEnabled);
    }
}

TEST_CASE("the MADT keeps the APIC IDs it is given, in order", "[acpi]") {
    const auto [mem, layout] = write_tables({0, 2, 4, 6, 0xfe});
    const ParsedMadt madt = parse_madt(read_table(mem, layout.madt));
    REQUIRE(madt.lapics.size() == 5);
    CHECK(madt.lapics[1].apic_id == 2);
    CHECK(madt.lapics[3].apic_id == 6);
    CHECK(madt.lapics[4].apic_id == 0xfe);
    CHECK(madt.lapics[4].processor_uid == 4);
}

TEST_CASE("the MADT describes the IOAPIC, the PIT override and NMI on LINT1", "[acpi]") {
    const auto [mem, layout] = write_tables(dense_ids(2));
    const ParsedMadt madt = parse_madt(read_table(mem, layout.madt));
    CHECK(val(madt.header.flags) == kMadtFlagPcatCompat);
    REQUIRE(madt.ioapics.size() == 1);
    CHECK(val(madt.ioapics[0].address) == kIoapicStart.value);
    CHECK(val(madt.ioapics[0].gsi_base) == 0);
    CHECK(madt.ioapics[0].io_apic_id == kIoapicId);
    REQUIRE(madt.overrides.size() == 1);
    CHECK(madt.overrides[0].bus == 0);
    CHECK(madt.overrides[0].source == 0);
    CHECK(val(madt.overrides[0].gsi) == kPitGsi);
    CHECK(val(madt.overrides[0].flags) == 0);
    REQUIRE(madt.nmis.size() == 1);
    CHECK(madt.nmis[0].processor_uid == 0xff);
    CHECK(madt.nmis[0].lint == 1);
}

TEST_CASE("vCPU sets the MADT cannot describe are refused", "[acpi]") {
    auto mem = low_memory();
    CHECK_THROWS_WITH(write_acpi_tables(mem, AcpiConfig{{}, {}}), Catch::Contains("0 vCPUs"));
    CHECK_THROWS_WITH(write_acpi_tables(mem, AcpiConfig{dense_ids(kMaxVcpus + 1), {}}),
                      Catch::Contains("255 vCPUs"));
    CHECK_THROWS_WITH(write_acpi_tables(mem, AcpiConfig{{0, 255}, {}}), Catch::Contains("APIC ID 255"));
    CHECK_THROWS_WITH(write_acpi_tables(mem, AcpiConfig{{0, 3, 3}, {}}), Catch::Contains("listed twice"));
}

TEST_CASE("the DSDT holds _S5_, COM1 and the i8042", "[acpi]") {
    const auto [mem, layout] = write_tables(dense_ids(1));
    const auto dsdt = read_table(mem, layout.dsdt);
    CHECK(read_at<SdtHeader>(dsdt, 0).revision == 2);
    // Name(_S5_, Package(4) {5, 0, 0, 0})
    const std::vector<uint8_t> s5{0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0a, kAcpiS5SleepType, 0, 0, 0};
    CHECK(std::search(dsdt.begin(), dsdt.end(), s5.begin(), s5.end()) != dsdt.end());
    CHECK(contains(dsdt, "COM1"));
    CHECK(contains(dsdt, "KBD_"));
    const std::vector<uint8_t> pnp0501{0x0c, 0x41, 0xd0, 0x05, 0x01};
    CHECK(std::search(dsdt.begin(), dsdt.end(), pnp0501.begin(), pnp0501.end()) != dsdt.end());
}

TEST_CASE("devices passed in are described in _SB", "[acpi]") {
    const auto plain = write_tables(dense_ids(1));
    const auto with_virtio =
        write_tables(dense_ids(1), {virtio_mmio_device(0, kVirtioMmioStart, kVirtioMmioStride, kFirstDeviceIrq),
                                    virtio_mmio_device(1, kVirtioMmioStart.unchecked_add(kVirtioMmioStride),
                                                       kVirtioMmioStride, kFirstDeviceIrq + 1)});
    const auto dsdt = read_table(with_virtio.mem, with_virtio.layout.dsdt);
    CHECK(byte_sum(dsdt) == 0);
    CHECK(contains(dsdt, "V000"));
    CHECK(contains(dsdt, "V001"));
    CHECK(contains(dsdt, "LNRO0005"));
    CHECK(dsdt.size() > read_table(plain.mem, plain.layout.dsdt).size());
}

TEST_CASE("virtio-mmio windows must fit Memory32Fixed", "[acpi]") {
    CHECK_THROWS_AS(virtio_mmio_device(0, Gpa(0x1'0000'0000), 0x1000, 5), Error);
    CHECK_THROWS_AS(virtio_mmio_device(0, Gpa(0xffff'f000), 0x2000, 5), Error);
    CHECK_THROWS_AS(virtio_mmio_device(0, kVirtioMmioStart, 0, 5), Error);
    CHECK_NOTHROW(virtio_mmio_device(0, Gpa(0xffff'f000), 0x1000, 5));
}

TEST_CASE("tables that outgrow the ACPI area are refused", "[acpi]") {
    const std::vector<uint8_t> blob(40000, 0xaa);
    std::vector<AmlDevice> devices{{"BIG0", {aml::name("BLOB", aml::buffer(blob))}},
                                   {"BIG1", {aml::name("BLOB", aml::buffer(blob))}}};
    auto mem = low_memory();
    CHECK_THROWS_WITH(write_acpi_tables(mem, AcpiConfig{dense_ids(1), devices}), Catch::Contains("ACPI tables need"));
    devices.pop_back();
    CHECK_NOTHROW(write_acpi_tables(mem, AcpiConfig{dense_ids(1), devices}));
}

TEST_CASE("writing fails when guest RAM does not cover the BIOS area", "[acpi]") {
    auto mem = GuestMemory::create({{Gpa(0), 0x80000}});
    CHECK_THROWS_WITH(write_acpi_tables(mem, AcpiConfig{dense_ids(1), {}}), Catch::Contains("ACPI tables"));
}

// --- Cross-checks with iasl (Debian's acpica-tools), when it is installed ---

namespace {

bool have_iasl() { return std::system("command -v iasl >/dev/null 2>&1") == 0; }

struct TempDir {
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "keel-acpi-XXXXXX").string();
        REQUIRE(mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::filesystem::path path;
};

void write_file(const std::filesystem::path& path, std::span<const uint8_t> bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

std::string read_text(const std::filesystem::path& path) {
    std::error_code error;
    const auto size = std::filesystem::file_size(path, error);
    if (error) return {};
    std::string text(size, '\0');
    std::ifstream(path, std::ios::binary).read(text.data(), static_cast<std::streamsize>(size));
    return text;
}

// Runs iasl with `args` inside `dir`; returns its exit status, output in `log`.
int run_iasl(const std::filesystem::path& dir, const std::string& args, std::string& log) {
    const std::string command = "cd '" + dir.string() + "' && iasl " + args + " > iasl.log 2>&1";
    const int status = std::system(command.c_str());
    log = read_text(dir / "iasl.log");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string hex(uint64_t value) {
    char text[24];
    std::snprintf(text, sizeof text, "0x%llX", static_cast<unsigned long long>(value));
    return text;
}

}  // namespace

TEST_CASE("iasl disassembles every table without complaint", "[acpi][iasl]") {
    if (!have_iasl()) {
        WARN("iasl not installed (apt-get install acpica-tools): skipped");
        return;
    }
    const auto [mem, layout] =
        write_tables(dense_ids(4), {virtio_mmio_device(0, kVirtioMmioStart, kVirtioMmioStride, kFirstDeviceIrq)});
    TempDir dir;
    const std::pair<const char*, Gpa> tables[] = {
        {"xsdt", layout.xsdt}, {"facp", layout.fadt}, {"apic", layout.madt}, {"dsdt", layout.dsdt}};
    for (const auto& [name, gpa] : tables) {
        write_file(dir.path / (std::string(name) + ".dat"), read_table(mem, gpa));
        std::string log;
        const int status = run_iasl(dir.path, std::string("-d ") + name + ".dat", log);
        const std::string dsl = read_text(dir.path / (std::string(name) + ".dsl"));
        INFO(name << ":\n" << log << dsl);
        CHECK(status == 0);
        CHECK(log.find("rror") == std::string::npos);
        CHECK(log.find("arning") == std::string::npos);
        CHECK(dsl.find("Incorrect") == std::string::npos);
        CHECK(dsl.find("Invalid") == std::string::npos);
        CHECK_FALSE(dsl.empty());
    }
    const std::string dsdt = read_text(dir.path / "dsdt.dsl");
    CHECK(dsdt.find("Name (_S5, Package (0x04)") != std::string::npos);
    CHECK(dsdt.find("EisaId (\"PNP0501\")") != std::string::npos);
    CHECK(dsdt.find("EisaId (\"PNP0303\")") != std::string::npos);
    CHECK(dsdt.find("\"LNRO0005\"") != std::string::npos);
    const std::string madt = read_text(dir.path / "apic.dsl");
    CHECK(madt.find("Local Apic ID : 03") != std::string::npos);
}

TEST_CASE("the DSDT is byte-identical to iasl's compilation of the same ASL", "[acpi][iasl]") {
    if (!have_iasl()) {
        WARN("iasl not installed (apt-get install acpica-tools): skipped");
        return;
    }
    // The platform written independently in ASL, from the same layout.h values.
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
        "    Device (V000) {\n"
        "      Name (_HID, \"LNRO0005\")\n"
        "      Name (_UID, 0)\n"
        "      Name (_CRS, ResourceTemplate () {\n"
        "        Memory32Fixed (ReadWrite, " + hex(kVirtioMmioStart.value) + ", " + hex(kVirtioMmioStride) + ")\n"
        "        Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive) {" + std::to_string(kFirstDeviceIrq) +
        "}\n"
        "      })\n"
        "    }\n"
        "  }\n}\n";
    TempDir dir;
    std::ofstream(dir.path / "keel.asl") << asl;
    std::string log;
    INFO(asl);
    REQUIRE(run_iasl(dir.path, "keel.asl", log) == 0);
    const std::string compiled = read_text(dir.path / "keel.aml");
    REQUIRE(compiled.size() > sizeof(SdtHeader));
    const std::vector<uint8_t> expected(compiled.begin() + sizeof(SdtHeader), compiled.end());

    const std::vector<AmlDevice> devices{virtio_mmio_device(0, kVirtioMmioStart, kVirtioMmioStride, kFirstDeviceIrq)};
    CHECK(build_dsdt_aml(devices) == expected);
    CHECK(build_dsdt(devices).size() == compiled.size());
}
