#include "arch/x86_64/mptable.h"

#include <algorithm>
#include <array>
#include <cstddef>

#include "arch/x86_64/acpi/acpi_tables.h"
#include "arch/x86_64/acpi/apic_ids.h"
#include "arch/x86_64/layout.h"
#include "common/error.h"

namespace keel::x86 {

namespace {

using acpi::append_wire;
using acpi::fixed_text;

#pragma pack(push, 1)

// MP spec 1.4 §4.1 MP Floating Pointer Structure.
struct MpFloatingPointer {
    std::array<char, 4> signature = fixed_text("_MP_");
    uint32_t config_table_address = 0;
    uint8_t length = 1;  // in 16-byte paragraphs
    uint8_t spec_rev = 4;
    uint8_t checksum = 0;
    uint8_t feature1 = 0;  // 0: a configuration table is present (no default configuration)
    uint8_t feature2 = 0;  // bit 7 IMCRP clear: virtual wire mode, no IMCR to program
    std::array<uint8_t, 3> feature3_5{};
};
static_assert(sizeof(MpFloatingPointer) == 16);

// §4.2 MP Configuration Table Header.
struct MpConfigHeader {
    std::array<char, 4> signature = fixed_text("PCMP");
    uint16_t base_table_length = 0;
    uint8_t spec_rev = 4;
    uint8_t checksum = 0;  // over the base table
    std::array<char, 8> oem_id = fixed_text("KEEL    ");
    std::array<char, 12> product_id = fixed_text("KEELVMM     ");
    uint32_t oem_table_pointer = 0;
    uint16_t oem_table_size = 0;
    uint16_t entry_count = 0;
    uint32_t local_apic_address = 0;
    uint16_t extended_table_length = 0;
    uint8_t extended_table_checksum = 0;
    uint8_t reserved = 0;
};
static_assert(sizeof(MpConfigHeader) == 44);

// §4.3 entry types; each entry starts with its type. Base entries must appear
// sorted by type.
enum MpEntryType : uint8_t { kMpProcessor = 0, kMpBus = 1, kMpIoApic = 2, kMpIoInterrupt = 3, kMpLocalInterrupt = 4 };

// §4.3.1 Processor Entries.
struct MpProcessor {
    uint8_t type = kMpProcessor;
    uint8_t local_apic_id = 0;
    uint8_t local_apic_version = 0;
    uint8_t cpu_flags = 0;  // bit 0 EN (usable), bit 1 BP (boot processor)
    uint32_t cpu_signature = 0;
    uint32_t feature_flags = 0;
    std::array<uint32_t, 2> reserved{};
};
static_assert(sizeof(MpProcessor) == 20);

// §4.3.2 Bus Entries.
struct MpBus {
    uint8_t type = kMpBus;
    uint8_t bus_id = 0;
    std::array<char, 6> bus_type{};
};
static_assert(sizeof(MpBus) == 8);

// §4.3.3 I/O APIC Entries.
struct MpIoApic {
    uint8_t type = kMpIoApic;
    uint8_t id = 0;
    uint8_t version = 0;
    uint8_t flags = 0;  // bit 0 EN
    uint32_t address = 0;
};
static_assert(sizeof(MpIoApic) == 8);

// §4.3.4 I/O Interrupt Assignment and §4.3.5 Local Interrupt Assignment
// Entries share one layout; only the destination's meaning differs.
struct MpInterrupt {
    uint8_t type = 0;
    uint8_t interrupt_type = 0;  // MpInterruptType
    uint16_t flags = 0;          // polarity/trigger; 0 = conforms to the bus (ISA: edge, active high)
    uint8_t source_bus_id = 0;
    uint8_t source_bus_irq = 0;
    uint8_t destination_id = 0;   // IOAPIC ID, or local APIC ID (0xff = all)
    uint8_t destination_pin = 0;  // IOAPIC INTIN#, or LINTIN#
};
static_assert(sizeof(MpInterrupt) == 8);

#pragma pack(pop)

// §4.3.4 Table 4-13 interrupt types.
enum MpInterruptType : uint8_t { kMpInt = 0, kMpNmi = 1, kMpSmi = 2, kMpExtInt = 3 };

constexpr uint8_t kCpuEnabled = 0x01;
constexpr uint8_t kCpuBootProcessor = 0x02;
constexpr uint8_t kIoApicEnabled = 0x01;
constexpr uint8_t kIsaBusId = 0;
constexpr uint8_t kAllLocalApics = 0xff;
constexpr uint32_t kIsaIrqCount = 16;
// The versions KVM's in-kernel LAPIC and IOAPIC report in their version
// registers (arch/x86/kvm/lapic.c APIC_VERSION, ioapic.h IOAPIC_VERSION_ID).
constexpr uint8_t kLapicVersion = 0x14;
constexpr uint8_t kIoapicVersion = 0x11;
// Family 6 and CPUID.1:EDX FPU|APIC, as §4.3.1 asks; Linux reads neither.
constexpr uint32_t kCpuSignature = 0x600;
constexpr uint32_t kCpuFeatureFlags = (1u << 0) | (1u << 9);

constexpr size_t kMaxConfigTableSize = sizeof(MpConfigHeader) + kMaxVcpus * sizeof(MpProcessor) + sizeof(MpBus) +
                                       sizeof(MpIoApic) + (kIsaIrqCount + 2) * sizeof(MpInterrupt);
static_assert(kMpConfigTableStart.value + kMaxConfigTableSize <= kHighMemStart.value,
              "the MP configuration table for kMaxVcpus must fit below 1 MiB");
static_assert(kBiosAreaStart.value + kAcpiTablesMaxSize <= kMpConfigTableStart.value,
              "the MP configuration table must not overlap the ACPI tables");

void append_processors(std::vector<uint8_t>& out, std::span<const uint32_t> apic_ids) {
    for (size_t i = 0; i < apic_ids.size(); ++i) {
        MpProcessor cpu;
        cpu.local_apic_id = static_cast<uint8_t>(apic_ids[i]);
        cpu.local_apic_version = kLapicVersion;
        cpu.cpu_flags = static_cast<uint8_t>(kCpuEnabled | (i == 0 ? kCpuBootProcessor : 0));
        cpu.cpu_signature = kCpuSignature;
        cpu.feature_flags = kCpuFeatureFlags;
        append_wire(out, cpu);
    }
}

// ISA IRQ n -> IOAPIC pin n, except IRQ 0 (the PIT) -> kPitGsi, whose own
// ISA IRQ then has no pin (as with the PC's IRQ0 -> pin 2 and the cascade IRQ 2).
size_t append_isa_interrupts(std::vector<uint8_t>& out) {
    size_t count = 0;
    for (uint32_t irq = 0; irq < kIsaIrqCount; ++irq) {
        if (irq != 0 && irq == kPitGsi) continue;
        MpInterrupt entry;
        entry.type = kMpIoInterrupt;
        entry.interrupt_type = kMpInt;
        entry.source_bus_id = kIsaBusId;
        entry.source_bus_irq = static_cast<uint8_t>(irq);
        entry.destination_id = kIoapicId;
        entry.destination_pin = static_cast<uint8_t>(irq == 0 ? kPitGsi : irq);
        append_wire(out, entry);
        ++count;
    }
    return count;
}

// Virtual wire mode (§3.6.2.2): the 8259's output on LINT0 as ExtINT, NMI on
// LINT1, for every local APIC.
void append_local_interrupt(std::vector<uint8_t>& out, MpInterruptType type, uint8_t lint) {
    MpInterrupt entry;
    entry.type = kMpLocalInterrupt;
    entry.interrupt_type = type;
    entry.source_bus_id = kIsaBusId;
    entry.source_bus_irq = 0;
    entry.destination_id = kAllLocalApics;
    entry.destination_pin = lint;
    append_wire(out, entry);
}

}  // namespace

std::vector<uint8_t> build_mp_config_table(std::span<const uint32_t> apic_ids) {
    validate_apic_ids(apic_ids, "MP table");
    std::vector<uint8_t> table(sizeof(MpConfigHeader), 0);
    append_processors(table, apic_ids);

    MpBus isa;
    isa.bus_id = kIsaBusId;
    isa.bus_type = fixed_text("ISA   ");
    append_wire(table, isa);

    MpIoApic ioapic;
    ioapic.id = kIoapicId;
    ioapic.version = kIoapicVersion;
    ioapic.flags = kIoApicEnabled;
    ioapic.address = static_cast<uint32_t>(kIoapicStart.value);
    append_wire(table, ioapic);

    const size_t isa_interrupts = append_isa_interrupts(table);
    append_local_interrupt(table, kMpExtInt, 0);
    append_local_interrupt(table, kMpNmi, 1);

    MpConfigHeader header;
    header.base_table_length = static_cast<uint16_t>(table.size());
    header.entry_count = static_cast<uint16_t>(apic_ids.size() + 2 + isa_interrupts + 2);
    header.local_apic_address = static_cast<uint32_t>(kLapicStart.value);
    const auto* header_bytes = reinterpret_cast<const uint8_t*>(&header);
    std::copy(header_bytes, header_bytes + sizeof header, table.begin());
    table[offsetof(MpConfigHeader, checksum)] = acpi::checksum_byte(table);
    return table;
}

std::vector<uint8_t> build_mp_floating_pointer(Gpa config_table) {
    MpFloatingPointer pointer;
    pointer.config_table_address = static_cast<uint32_t>(config_table.value);
    std::vector<uint8_t> bytes;
    append_wire(bytes, pointer);
    bytes[offsetof(MpFloatingPointer, checksum)] = acpi::checksum_byte(bytes);
    return bytes;
}

MpTableLayout write_mptable(const GuestMemory& mem, std::span<const uint32_t> apic_ids) {
    const std::vector<uint8_t> config = build_mp_config_table(apic_ids);
    mem.write_or_throw(kMpConfigTableStart, config, "MP configuration table");
    mem.write_or_throw(kEbdaStart, build_mp_floating_pointer(kMpConfigTableStart), "MP floating pointer");
    return {kEbdaStart, kMpConfigTableStart, config.size()};
}

}  // namespace keel::x86
