// libFuzzer target: the fuzz bytes are a machine description — vCPU APIC
// IDs, virtio-mmio devices, the PCI host bridge — within the ranges the CLI
// allows and far beyond. The ACPI builder and the MP table builder write
// their tables into the first MiB of a fake guest RAM filled with a
// sentinel; the fuzzer parses them back as a guest would.
//
// Checks:
//   - a description the builders refuse throws keel::Error (any other
//     exception escapes and is reported) and leaves guest memory untouched;
//     a plainly valid one (APIC IDs as keel assigns them, few well-placed
//     devices, the default bridge) is never refused;
//   - nothing is written outside [kBiosAreaStart, + layout.size), which is
//     at most kAcpiTablesMaxSize, nor outside the MP table's two areas;
//   - RSDP: signature, both checksums, XSDT pointer inside the area; every
//     XSDT entry and the FADT's X_DSDT point at a table inside the area
//     whose length fits it and whose bytes sum to 0; no two tables overlap;
//     the MADT lists one enabled local APIC per vCPU with the right IDs;
//   - MP table: floating pointer "_MP_" sums to 0 and points at the
//     configuration table "PCMP", which sums to 0 and lists every vCPU.
//
// Input layout:
//   u8  vCPUs: bits 1:0 ID scheme (0: 0..n-1 as keel assigns, 1: fuzz u8s,
//       2: fuzz u32s, 3: 0..n-1 with one fuzz ID), bit 2 count from a u16
//   u8 or u16 count (modulo 300: 0 and 255..299 are out of range)
//   u8  devices: bits 5:0 count, bit 6 fuzz placement, bit 7 PCI present
//   per device in fuzz placement: u16 index, u32 base, u32 size, u8 gsi
//   PCI: u8 flags (bit 0 fuzz bridge), then u8 bus_start, u8 bus_end,
//        u32 ecam base, u32 window start, u32 window size, u8 routes and
//        per route u8 slot, u8 pin, u8 gsi

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <set>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "arch/x86_64/acpi/acpi_builder.h"
#include "arch/x86_64/acpi/apic_ids.h"
#include "arch/x86_64/layout.h"
#include "arch/x86_64/mptable.h"
#include "common/error.h"
#include "fuzz_input.h"
#include "sentinel_ram.h"
#include "memory/guest_memory.h"

namespace {

using keel::Gpa;
using keel::GuestMemory;
using keel::fuzz::check;
using Input = keel::fuzz::FuzzInput;
namespace x86 = keel::x86;
namespace acpi = keel::x86::acpi;

constexpr uint64_t kRamSize = 0x100000;

keel::fuzz::SentinelRam& sentinel_ram() {
    static keel::fuzz::SentinelRam instance(kRamSize);
    return instance;
}
GuestMemory& memory() { return sentinel_ram().memory(); }
uint8_t* ram() { return sentinel_ram().bytes(); }
void reset_ram() { sentinel_ram().fill(); }
bool untouched(uint64_t start, uint64_t end) { return sentinel_ram().untouched(start, end); }

bool untouched_outside(uint64_t start, uint64_t end) {
    return untouched(0, start) && untouched(end, kRamSize);
}

template <typename T>
T load(uint64_t gpa) {
    T value{};
    std::memcpy(&value, ram() + gpa, sizeof value);
    return value;
}

uint8_t sum(uint64_t gpa, uint64_t len) {
    uint8_t s = 0;
    for (uint64_t i = 0; i < len; ++i) s = static_cast<uint8_t>(s + ram()[gpa + i]);
    return s;
}

bool signature_is(uint64_t gpa, std::string_view sig) {
    return std::memcmp(ram() + gpa, sig.data(), sig.size()) == 0;
}

struct Machine {
    std::vector<uint32_t> apic_ids;
    acpi::AcpiConfig config;
    bool plainly_valid = true;
};

Machine describe(Input& in) {
    Machine m;
    const uint8_t cpus = in.u8();
    const size_t count = ((cpus & 4) != 0 ? in.u16() : in.u8()) % 300;
    const int scheme = cpus & 3;
    for (size_t i = 0; i < count; ++i) {
        switch (scheme) {
            case 1:
                m.apic_ids.push_back(in.u8());
                break;
            case 2:
                m.apic_ids.push_back(in.u32());
                break;
            default:
                m.apic_ids.push_back(static_cast<uint32_t>(i));
                break;
        }
    }
    if (scheme == 3 && !m.apic_ids.empty()) m.apic_ids[in.u8() % m.apic_ids.size()] = in.u32();
    m.config.apic_ids = m.apic_ids;
    if (scheme != 0 || count == 0 || count > x86::kMaxVcpus) m.plainly_valid = false;

    const uint8_t devices = in.u8();
    const bool fuzz_placement = (devices & 0x40) != 0;
    for (uint32_t i = 0; i < (devices & 0x3fu); ++i) {
        uint32_t index = i;
        uint64_t base = x86::kVirtioMmioStart.value + i * x86::kVirtioMmioStride;
        uint64_t size = x86::kVirtioMmioStride;
        uint32_t gsi = 5 + i;
        if (fuzz_placement) {
            index = in.u16();
            const uint64_t high = in.u8() & 1u;
            base = in.u32() | (high << 32);
            size = in.u32();
            gsi = in.u8();
            m.plainly_valid = false;
        }
        try {
            m.config.devices.push_back(acpi::virtio_mmio_device(index, Gpa{base}, size, gsi));
        } catch (const keel::Error&) {
            check(fuzz_placement);  // keel's own placement is always describable
        }
    }
    if ((devices & 0x3f) > 32) m.plainly_valid = false;

    if ((devices & 0x80) != 0) {
        acpi::PciHostBridgeConfig pci;
        if ((in.u8() & 1) != 0) {
            m.plainly_valid = false;
            pci.bus_start = in.u8();
            pci.bus_end = in.u8();
            pci.ecam_base = Gpa{uint64_t{in.u32()} << 8};
            pci.mmio_window_start = Gpa{in.u32()};
            pci.mmio_window_size = in.u32();
            const int routes = in.u8() % 40;
            for (int r = 0; r < routes; ++r) pci.intx_routes.push_back({in.u8(), in.u8(), in.u8()});
        }
        m.config.pci = pci;
    }
    return m;
}

struct Table {
    uint64_t at;
    uint32_t length;
};

// A table the guest reaches through a pointer: inside the area, a header
// that fits, a length that fits, bytes that sum to zero.
Table checked_table(uint64_t gpa, uint64_t area_end) {
    check(gpa >= x86::kBiosAreaStart.value && gpa + 36 <= area_end);
    const auto length = load<uint32_t>(gpa + 4);
    check(length >= 36 && gpa + length <= area_end);
    check(sum(gpa, length) == 0);
    return {gpa, length};
}

void check_acpi(const Machine& m, const acpi::AcpiLayout& layout) {
    const uint64_t base = x86::kBiosAreaStart.value;
    check(layout.rsdp.value == base);
    check(layout.size > 0 && layout.size <= x86::kAcpiTablesMaxSize);
    const uint64_t end = base + layout.size;
    check(untouched_outside(base, end));

    check(signature_is(base, "RSD PTR "));
    check(sum(base, 20) == 0 && sum(base, 36) == 0);
    check(load<uint32_t>(base + 20) == 36);  // RSDP length
    const Table xsdt = checked_table(load<uint64_t>(base + 24), end);
    check(xsdt.at == layout.xsdt.value && signature_is(xsdt.at, "XSDT"));
    check((xsdt.length - 36) % 8 == 0);

    std::vector<Table> tables{{base, 36}, xsdt};
    std::set<std::string_view> seen;
    for (uint64_t e = xsdt.at + 36; e < xsdt.at + xsdt.length; e += 8) {
        const Table t = checked_table(load<uint64_t>(e), end);
        tables.push_back(t);
        if (signature_is(t.at, "FACP")) {
            check(seen.insert("FACP").second && t.at == layout.fadt.value && t.length >= 148);
            const Table dsdt = checked_table(load<uint64_t>(t.at + 140), end);
            check(dsdt.at == layout.dsdt.value && signature_is(dsdt.at, "DSDT"));
            tables.push_back(dsdt);
        } else if (signature_is(t.at, "APIC")) {
            check(seen.insert("APIC").second && t.at == layout.madt.value);
            // Entries after the 44-byte header: type, length, ...
            std::vector<uint32_t> lapics;
            uint64_t p = t.at + 44;
            while (p < t.at + t.length) {
                const uint8_t type = ram()[p];
                const uint8_t len = ram()[p + 1];
                check(len >= 2 && p + len <= t.at + t.length);
                if (type == 0) {
                    check(len == 8 && (load<uint32_t>(p + 4) & 1) != 0);  // enabled
                    check(ram()[p + 2] == lapics.size());                 // UID = vCPU index
                    lapics.push_back(ram()[p + 3]);
                }
                p += len;
            }
            check(p == t.at + t.length);
            check(lapics == m.apic_ids);
        } else if (signature_is(t.at, "MCFG")) {
            check(seen.insert("MCFG").second && m.config.pci && t.at == layout.mcfg.value);
        } else {
            check(false);  // keel writes no other table
        }
    }
    check(seen.contains("FACP") && seen.contains("APIC") && seen.contains("MCFG") == m.config.pci.has_value());
    std::sort(tables.begin(), tables.end(), [](const Table& a, const Table& b) { return a.at < b.at; });
    for (size_t i = 1; i < tables.size(); ++i) check(tables[i - 1].at + tables[i - 1].length <= tables[i].at);
}

void check_mptable(const Machine& m) {
    reset_ram();
    x86::MpTableLayout layout{};
    try {
        layout = x86::write_mptable(memory(), m.apic_ids);
    } catch (const keel::Error&) {
        check(!m.plainly_valid);
        check(untouched_outside(0, 0));
        return;
    }
    const uint64_t fp = layout.floating_pointer.value;
    const uint64_t table = layout.config_table.value;
    check(fp == x86::kEbdaStart.value && table == x86::kMpConfigTableStart.value);
    check(table + layout.config_table_size <= kRamSize);
    check(fp + 16 <= table);
    check(untouched(0, fp) && untouched(fp + 16, table) && untouched(table + layout.config_table_size, kRamSize));
    check(signature_is(fp, "_MP_") && sum(fp, 16) == 0);
    check(load<uint32_t>(fp + 4) == table);
    check(signature_is(table, "PCMP"));
    const auto length = load<uint16_t>(table + 4);
    check(length == layout.config_table_size && sum(table, length) == 0);
    // Processor entries (type 0, 20 bytes) come first after the 44-byte header.
    for (size_t i = 0; i < m.apic_ids.size(); ++i) {
        const uint64_t entry = table + 44 + 20 * i;
        check(entry + 20 <= table + length);
        check(ram()[entry] == 0 && ram()[entry + 1] == m.apic_ids[i]);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Input in(std::span(data, size));
    const Machine m = describe(in);

    reset_ram();
    try {
        check_acpi(m, acpi::write_acpi_tables(memory(), m.config));
    } catch (const keel::Error&) {
        check(!m.plainly_valid);
        check(untouched_outside(0, 0));
    }
    check_mptable(m);
    return 0;
}
