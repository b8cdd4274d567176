#include "arch/x86_64/acpi/pci_acpi.h"

#include <string>

#include "arch/x86_64/acpi/acpi_tables.h"
#include "common/error.h"

namespace keel::x86::acpi {

namespace {

// ECAM gives each bus 1 MiB: 32 devices x 8 functions x 4 KiB (PCIe 5.0 §7.2.2).
constexpr uint64_t kEcamBusShift = 20;

void validate(const PciHostBridgeConfig& config) {
    if (config.bus_start > config.bus_end) throw Error("PCI ACPI: the bus range is empty");
    if (config.ecam_base.value % (uint64_t{1} << kEcamBusShift) != 0) {
        throw Error("PCI ACPI: the ECAM base must be 1 MiB aligned");
    }
    const uint64_t end = config.mmio_window_start.value + config.mmio_window_size;
    if (config.mmio_window_size == 0 || end < config.mmio_window_start.value || end > (uint64_t{1} << 32)) {
        throw Error("PCI ACPI: the MMIO window must be non-empty and lie below 4 GiB");
    }
    for (const PciIntxRoute& route : config.intx_routes) {
        if (route.slot >= 32 || route.pin > 3) {
            throw Error("PCI ACPI: INTx route for slot " + std::to_string(route.slot) + " pin " +
                        std::to_string(route.pin) + " is out of range");
        }
    }
}

// The ECAM bytes that [bus_start, bus_end] occupy.
uint64_t ecam_start(const PciHostBridgeConfig& config) {
    return config.ecam_base.value + (uint64_t{config.bus_start} << kEcamBusShift);
}
uint64_t ecam_size(const PciHostBridgeConfig& config) {
    return uint64_t{config.bus_end - config.bus_start + 1u} << kEcamBusShift;
}

// _PRT (ACPI 6.4 §6.2.13): Package {Address, Pin, Source, Source Index}; the
// address is the device in the high word and 0xFFFF ("any function"), and a
// Source of 0 makes Source Index a GSI.
aml::Bytes routing_table(const std::vector<PciIntxRoute>& routes) {
    std::vector<aml::Bytes> entries;
    for (const PciIntxRoute& route : routes) {
        entries.push_back(aml::package({aml::integer(uint64_t{route.slot} << 16 | 0xffff), aml::integer(route.pin),
                                        aml::integer(0), aml::integer(route.gsi)}));
    }
    return aml::name("_PRT", aml::package(entries));
}

AmlDevice host_bridge(const PciHostBridgeConfig& config) {
    aml::ResourceTemplate crs;
    crs.word_bus_number(config.bus_start, config.bus_end)
        .io(kPciConfigAddressPort, static_cast<uint8_t>(kPciConfigPortCount))
        .dword_memory_window(static_cast<uint32_t>(config.mmio_window_start.value),
                             static_cast<uint32_t>(config.mmio_window_size));
    AmlDevice device{"PCI0",
                     {
                         aml::name("_HID", aml::eisa_id("PNP0A08")),  // PCI Express root bridge
                         aml::name("_CID", aml::eisa_id("PNP0A03")),  // PCI root bridge
                         aml::name("_SEG", aml::integer(config.segment)),
                         aml::name("_BBN", aml::integer(config.bus_start)),
                         aml::name("_UID", aml::integer(config.segment)),
                         aml::name("_CRS", crs.encode()),
                     }};
    if (!config.intx_routes.empty()) device.objects.push_back(routing_table(config.intx_routes));
    return device;
}

AmlDevice ecam_reservation(const PciHostBridgeConfig& config) {
    aml::ResourceTemplate crs;
    crs.memory32_fixed(aml::MemoryAccess::kReadWrite, static_cast<uint32_t>(ecam_start(config)),
                       static_cast<uint32_t>(ecam_size(config)));
    return AmlDevice{"ECAM",
                     {
                         aml::name("_HID", aml::eisa_id("PNP0C02")),  // motherboard resources
                         aml::name("_UID", aml::integer(config.segment)),
                         aml::name("_CRS", crs.encode()),
                     }};
}

}  // namespace

std::vector<uint8_t> build_mcfg(const PciHostBridgeConfig& config) {
    validate(config);
    McfgHeader header;
    header.header = make_sdt_header(kAcpiSigMcfg, sizeof(McfgHeader) + sizeof(McfgAllocation), kMcfgRevision);
    McfgAllocation allocation;
    allocation.base_address = config.ecam_base.value;
    allocation.segment = config.segment;
    allocation.start_bus = config.bus_start;
    allocation.end_bus = config.bus_end;
    std::vector<uint8_t> table;
    append_wire(table, header);
    append_wire(table, allocation);
    finish_sdt(table);
    return table;
}

std::vector<AmlDevice> pci_host_bridge_devices(const PciHostBridgeConfig& config) {
    validate(config);
    if (ecam_start(config) + ecam_size(config) > (uint64_t{1} << 32)) {
        throw Error("PCI ACPI: the ECAM range must lie below 4 GiB");
    }
    return {host_bridge(config), ecam_reservation(config)};
}

}  // namespace keel::x86::acpi
