#include <catch2/catch.hpp>

#include <cstring>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "platform_fixtures.h"
#include "arch/x86_64/acpi/acpi_tables.h"
#include "arch/x86_64/layout.h"
#include "arch/x86_64/mptable.h"
#include "common/error.h"

// The tables are parsed here from raw bytes at the offsets of the
// MultiProcessor Specification 1.4 (§4.1-§4.3), the way a kernel reads them.

using namespace keel;
using namespace keel::x86;

using keel::test::dense_ids;
using keel::test::low_memory;
using keel::test::read_bytes;

namespace {

template <typename T>
T field(const std::vector<uint8_t>& bytes, size_t offset) {
    REQUIRE(offset + sizeof(T) <= bytes.size());
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

struct Processor {
    uint8_t apic_id;
    uint8_t flags;
};
struct Interrupt {  // I/O and local interrupt entries share a layout
    uint8_t type;
    uint8_t interrupt_type;
    uint16_t flags;
    uint8_t source_bus;
    uint8_t source_irq;
    uint8_t destination;
    uint8_t pin;
};

struct ParsedConfig {
    std::vector<uint8_t> bytes;
    std::vector<Processor> processors;
    std::vector<std::vector<uint8_t>> buses;
    std::vector<std::vector<uint8_t>> ioapics;
    std::vector<Interrupt> io_interrupts;
    std::vector<Interrupt> local_interrupts;
    size_t entries = 0;
};

// Reads the configuration table the floating pointer at kEbdaStart names.
ParsedConfig parse_config(const GuestMemory& mem) {
    const auto pointer = read_bytes(mem, kEbdaStart, 16);
    const auto header = read_bytes(mem, Gpa(field<uint32_t>(pointer, 4)), 44);
    ParsedConfig config;
    config.bytes = read_bytes(mem, Gpa(field<uint32_t>(pointer, 4)), field<uint16_t>(header, 4));
    for (size_t offset = 44; offset < config.bytes.size(); ++config.entries) {
        const uint8_t type = config.bytes[offset];
        const size_t length = type == 0 ? 20 : 8;
        REQUIRE(offset + length <= config.bytes.size());
        std::vector<uint8_t> entry(config.bytes.begin() + static_cast<ptrdiff_t>(offset),
                                   config.bytes.begin() + static_cast<ptrdiff_t>(offset + length));
        if (type == 0) config.processors.push_back({entry[1], entry[3]});
        if (type == 1) config.buses.push_back(entry);
        if (type == 2) config.ioapics.push_back(entry);
        if (type == 3 || type == 4) {
            const Interrupt irq{entry[0], entry[1], field<uint16_t>(entry, 2), entry[4], entry[5], entry[6], entry[7]};
            (type == 3 ? config.io_interrupts : config.local_interrupts).push_back(irq);
        }
        REQUIRE(type <= 4);
        offset += length;
    }
    return config;
}

}  // namespace

TEST_CASE("the MP floating pointer sits in the EBDA's first KiB and names the config table", "[mptable]") {
    auto mem = low_memory();
    const MpTableLayout layout = write_mptable(mem, dense_ids(2));
    CHECK(layout.floating_pointer == kEbdaStart);
    CHECK(layout.floating_pointer.value % 16 == 0);
    CHECK(layout.floating_pointer.value + 16 <= kEbdaStart.value + 1024);
    const auto pointer = read_bytes(mem, kEbdaStart, 16);
    CHECK(std::string(pointer.begin(), pointer.begin() + 4) == "_MP_");
    CHECK(field<uint32_t>(pointer, 4) == kMpConfigTableStart.value);
    CHECK(pointer[8] == 1);   // length in paragraphs
    CHECK(pointer[9] == 4);   // spec revision 1.4
    CHECK(pointer[11] == 0);  // a configuration table follows, no default configuration
    CHECK(pointer[12] == 0);  // virtual wire mode: no IMCR
    CHECK(acpi::byte_sum(pointer) == 0);
}

TEST_CASE("the MP config table lists every vCPU, the boot processor first, and fits below 1 MiB", "[mptable]") {
    const uint32_t vcpus = GENERATE(1u, 4u, 254u);
    auto mem = low_memory();
    const MpTableLayout layout = write_mptable(mem, dense_ids(vcpus));
    const ParsedConfig config = parse_config(mem);
    CHECK(std::string(config.bytes.begin(), config.bytes.begin() + 4) == "PCMP");
    CHECK(config.bytes[6] == 4);
    CHECK(acpi::byte_sum(config.bytes) == 0);
    CHECK(field<uint16_t>(config.bytes, 34) == config.entries);
    CHECK(field<uint32_t>(config.bytes, 36) == kLapicStart.value);
    CHECK(layout.config_table_size == config.bytes.size());
    CHECK(layout.config_table.value + layout.config_table_size <= kHighMemStart.value);
    CHECK(layout.config_table.value >= kBiosAreaStart.value + kAcpiTablesMaxSize);

    REQUIRE(config.processors.size() == vcpus);
    for (uint32_t i = 0; i < vcpus; ++i) {
        CHECK(config.processors[i].apic_id == i);
        CHECK(config.processors[i].flags == (i == 0 ? 0x03 : 0x01));  // EN, and BP on the first
    }
}

TEST_CASE("the MP config table keeps the APIC IDs it is given", "[mptable]") {
    auto mem = low_memory();
    write_mptable(mem, std::vector<uint32_t>{6, 0, 0xfe});
    const ParsedConfig config = parse_config(mem);
    REQUIRE(config.processors.size() == 3);
    CHECK(config.processors[0].apic_id == 6);
    CHECK(config.processors[0].flags == 0x03);
    CHECK(config.processors[2].apic_id == 0xfe);
}

TEST_CASE("ISA IRQs reach the IOAPIC pins the MADT describes", "[mptable]") {
    auto mem = low_memory();
    write_mptable(mem, dense_ids(1));
    const ParsedConfig config = parse_config(mem);
    REQUIRE(config.buses.size() == 1);
    CHECK(config.buses[0][1] == 0);
    CHECK(std::string(config.buses[0].begin() + 2, config.buses[0].end()) == "ISA   ");
    REQUIRE(config.ioapics.size() == 1);
    CHECK(config.ioapics[0][1] == kIoapicId);
    CHECK((config.ioapics[0][3] & 0x01) == 0x01);
    CHECK(field<uint32_t>(config.ioapics[0], 4) == kIoapicStart.value);

    std::set<uint8_t> pins;
    std::set<uint8_t> irqs;
    for (const auto& irq : config.io_interrupts) {
        CHECK(irq.interrupt_type == 0);  // INT
        CHECK(irq.flags == 0);           // conforms to ISA: edge, active high
        CHECK(irq.source_bus == 0);
        CHECK(irq.destination == kIoapicId);
        CHECK(irq.pin == (irq.source_irq == 0 ? kPitGsi : irq.source_irq));
        CHECK(pins.insert(irq.pin).second);
        CHECK(irqs.insert(irq.source_irq).second);
    }
    // Every ISA IRQ except the one whose pin the PIT took (none when kPitGsi == 0).
    CHECK(config.io_interrupts.size() == (kPitGsi == 0 ? 16u : 15u));
    CHECK(irqs.count(0) == 1);
    CHECK(irqs.count(static_cast<uint8_t>(kSerialCom1Irq)) == 1);
    CHECK(irqs.count(static_cast<uint8_t>(kI8042KeyboardIrq)) == 1);
}

TEST_CASE("local interrupts: ExtINT on LINT0 and NMI on LINT1 of every CPU", "[mptable]") {
    auto mem = low_memory();
    write_mptable(mem, dense_ids(4));
    const ParsedConfig config = parse_config(mem);
    REQUIRE(config.local_interrupts.size() == 2);
    CHECK(config.local_interrupts[0].interrupt_type == 3);  // ExtINT
    CHECK(config.local_interrupts[0].pin == 0);
    CHECK(config.local_interrupts[0].destination == 0xff);
    CHECK(config.local_interrupts[1].interrupt_type == 1);  // NMI
    CHECK(config.local_interrupts[1].pin == 1);
    CHECK(config.local_interrupts[1].destination == 0xff);
}

TEST_CASE("vCPU sets the MP table cannot describe are refused", "[mptable]") {
    auto mem = low_memory();
    CHECK_THROWS_WITH(write_mptable(mem, std::vector<uint32_t>{}), Catch::Contains("0 vCPUs"));
    CHECK_THROWS_WITH(write_mptable(mem, dense_ids(kMaxVcpus + 1)), Catch::Contains("255 vCPUs"));
    CHECK_THROWS_WITH(write_mptable(mem, std::vector<uint32_t>{0, 0x100}), Catch::Contains("APIC ID 256"));
    CHECK_THROWS_WITH(write_mptable(mem, std::vector<uint32_t>{1, 1}), Catch::Contains("listed twice"));
}

TEST_CASE("writing the MP table fails when guest RAM does not cover it", "[mptable]") {
    auto mem = GuestMemory::create({{Gpa(0), 0x9f000}});
    CHECK_THROWS_AS(write_mptable(mem, dense_ids(1)), Error);
}
