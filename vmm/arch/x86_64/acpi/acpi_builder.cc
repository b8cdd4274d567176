#include "arch/x86_64/acpi/acpi_builder.h"

#include <algorithm>
#include <cstddef>
#include <string>

#include "arch/x86_64/acpi/acpi_tables.h"
#include "arch/x86_64/acpi/apic_ids.h"
#include "arch/x86_64/layout.h"
#include "common/error.h"

namespace keel::x86::acpi {

namespace {

// §5.2.5.1: the RSDP sits on a 16-byte boundary; the other tables follow it
// aligned the same way (any alignment is valid for them).
constexpr uint64_t kTableAlignment = 16;

constexpr uint64_t align_up(uint64_t value) { return (value + kTableAlignment - 1) & ~(kTableAlignment - 1); }

GenericAddress io_byte_register(uint16_t port) {
    GenericAddress reg;
    reg.address_space_id = kAddressSpaceSystemIo;
    reg.register_bit_width = 8;
    reg.register_bit_offset = 0;
    reg.access_size = kAccessSizeByte;
    reg.address = port;
    return reg;
}

template <typename T>
std::vector<uint8_t> finished(const T& table) {
    std::vector<uint8_t> bytes;
    append_wire(bytes, table);
    finish_sdt(bytes);
    return bytes;
}

}  // namespace

std::vector<uint8_t> build_fadt(Gpa dsdt) {
    Fadt fadt;
    fadt.header = make_sdt_header(kAcpiSigFadt, sizeof(Fadt), kFadtMajorVersion);
    fadt.minor_version = kFadtMinorVersion;
    // PWR_BUTTON/SLP_BUTTON set = "no fixed-feature button": a hardware-reduced
    // platform has none, and keel has no control-method button either.
    fadt.flags = kFadtFlagHwReducedAcpi | kFadtFlagPwrButton | kFadtFlagSlpButton | kFadtFlagResetRegSup;
    // Legacy devices: COM1 and the i8042 are ISA-style devices. 8042: keel has
    // one (its reset line is the last resort of Linux's reboot); without the
    // flag Linux marks the controller firmware-absent (acpi_parse_fadt). CMOS
    // RTC: keel has none, so Linux registers no rtc_cmos. VGA: none. MSI stays
    // allowed for virtio-pci.
    fadt.iapc_boot_arch = kIapcBootArchLegacyDevices | kIapcBootArch8042 | kIapcBootArchVgaNotPresent |
                          kIapcBootArchCmosRtcNotPresent;
    fadt.reset_reg = io_byte_register(kAcpiResetPort);
    fadt.reset_value = kAcpiResetValue;
    // Only the 64-bit pointer: §5.2.9 says OSPM ignores DSDT when X_DSDT is set.
    fadt.x_dsdt = dsdt.value;
    // §4.8.3.7: the hardware-reduced replacements for PM1 control/status.
    fadt.sleep_control_reg = io_byte_register(kAcpiSleepControlPort);
    fadt.sleep_status_reg = io_byte_register(kAcpiSleepStatusPort);
    fadt.hypervisor_vendor_id = kHypervisorVendorId;
    return finished(fadt);
}

std::vector<uint8_t> build_madt(std::span<const uint32_t> apic_ids) {
    validate_apic_ids(apic_ids, "MADT");
    const size_t length = sizeof(MadtHeader) + apic_ids.size() * sizeof(MadtLocalApic) + sizeof(MadtIoApic) +
                          sizeof(MadtInterruptSourceOverride) + sizeof(MadtLocalApicNmi);
    MadtHeader header;
    header.header = make_sdt_header(kAcpiSigMadt, static_cast<uint32_t>(length), kMadtRevision);
    header.local_apic_address = static_cast<uint32_t>(kLapicStart.value);
    // KVM_CREATE_IRQCHIP also emulates the PC's dual 8259, wired to the same
    // GSIs 0-15 as the IOAPIC: PCAT_COMPAT tells the OS it exists and must be
    // masked when it uses the IOAPIC (Linux's hardware-reduced path never
    // touches the 8259 anyway).
    header.flags = kMadtFlagPcatCompat;

    std::vector<uint8_t> table;
    append_wire(table, header);
    // The boot processor first, as §5.2.12 asks.
    for (size_t uid = 0; uid < apic_ids.size(); ++uid) {
        MadtLocalApic lapic;
        lapic.processor_uid = static_cast<uint8_t>(uid);
        lapic.apic_id = static_cast<uint8_t>(apic_ids[uid]);
        lapic.flags = kMadtLocalApicEnabled;
        append_wire(table, lapic);
    }
    MadtIoApic ioapic;
    ioapic.io_apic_id = kIoapicId;
    ioapic.address = static_cast<uint32_t>(kIoapicStart.value);
    ioapic.gsi_base = 0;
    append_wire(table, ioapic);
    // ISA IRQ 0 (the PIT) -> kPitGsi. ISA IRQs 1-15 are identity-mapped,
    // which §5.2.12 makes the default without an override.
    MadtInterruptSourceOverride pit;
    pit.bus = 0;
    pit.source = 0;
    pit.gsi = kPitGsi;
    append_wire(table, pit);
    // NMI arrives on LINT1 of every local APIC, as on every PC.
    MadtLocalApicNmi nmi;
    nmi.processor_uid = kMadtAllProcessors;
    nmi.lint = 1;
    append_wire(table, nmi);
    finish_sdt(table);
    return table;
}

std::vector<uint8_t> build_xsdt(std::span<const Gpa> tables) {
    const size_t length = sizeof(SdtHeader) + tables.size() * sizeof(uint64_t);
    std::vector<uint8_t> table;
    append_wire(table, make_sdt_header(kAcpiSigXsdt, static_cast<uint32_t>(length), kXsdtRevision));
    for (Gpa gpa : tables) append_wire(table, gpa.value);
    finish_sdt(table);
    return table;
}

std::vector<uint8_t> build_rsdp(Gpa xsdt) {
    Rsdp rsdp;
    rsdp.signature = kAcpiSigRsdp;
    rsdp.oem_id = kOemId;
    rsdp.revision = kRsdpRevision;
    rsdp.rsdt_address = 0;  // no RSDT: revision 2 guests use the XSDT
    rsdp.length = sizeof(Rsdp);
    rsdp.xsdt_address = xsdt.value;
    std::vector<uint8_t> bytes;
    append_wire(bytes, rsdp);
    // The ACPI 1.0 checksum first: the extended one covers it.
    bytes[offsetof(Rsdp, checksum)] = checksum_byte(std::span(bytes).first(kRsdpV1Length));
    bytes[offsetof(Rsdp, extended_checksum)] = checksum_byte(bytes);
    return bytes;
}

AcpiImage build_acpi_tables(const AcpiConfig& config, Gpa base) {
    const std::vector<uint8_t> madt = build_madt(config.apic_ids);
    std::vector<AmlDevice> devices = config.devices;
    std::vector<uint8_t> mcfg;
    if (config.pci) {
        mcfg = build_mcfg(*config.pci);
        for (AmlDevice& device : pci_host_bridge_devices(*config.pci)) devices.push_back(std::move(device));
    }
    const std::vector<uint8_t> dsdt = build_dsdt(devices);
    const size_t xsdt_entry_count = config.pci ? 3 : 2;
    const size_t xsdt_length = sizeof(SdtHeader) + xsdt_entry_count * sizeof(uint64_t);

    // Every table's size is known before any address is, so place first,
    // then fill in the pointers.
    AcpiLayout layout;
    layout.rsdp = base;
    uint64_t offset = align_up(sizeof(Rsdp));
    auto place = [&](size_t size) {
        const Gpa at = base.unchecked_add(offset);
        offset = align_up(offset + size);
        return at;
    };
    layout.xsdt = place(xsdt_length);
    layout.fadt = place(sizeof(Fadt));
    layout.madt = place(madt.size());
    layout.dsdt = place(dsdt.size());
    layout.size = layout.dsdt.value + dsdt.size() - base.value;
    if (config.pci) {
        layout.mcfg = place(mcfg.size());
        layout.size = layout.mcfg.value + mcfg.size() - base.value;
    }
    if (layout.size > kAcpiTablesMaxSize) {
        throw Error("ACPI tables need " + std::to_string(layout.size) + " bytes but keel reserves " +
                    std::to_string(kAcpiTablesMaxSize) + ": describe fewer devices");
    }

    const Gpa xsdt_entries[] = {layout.fadt, layout.madt, layout.mcfg};
    AcpiImage image{layout, std::vector<uint8_t>(layout.size, 0)};
    auto put = [&](Gpa at, const std::vector<uint8_t>& table) {
        std::copy(table.begin(), table.end(), image.bytes.begin() + static_cast<ptrdiff_t>(at.value - base.value));
    };
    put(layout.rsdp, build_rsdp(layout.xsdt));
    put(layout.xsdt, build_xsdt(std::span(xsdt_entries).first(xsdt_entry_count)));
    put(layout.fadt, build_fadt(layout.dsdt));
    put(layout.madt, madt);
    put(layout.dsdt, dsdt);
    if (config.pci) put(layout.mcfg, mcfg);
    return image;
}

AcpiLayout write_acpi_tables(const GuestMemory& mem, const AcpiConfig& config) {
    const AcpiImage image = build_acpi_tables(config, kBiosAreaStart);
    mem.write_or_throw(image.layout.rsdp, image.bytes, "ACPI tables");
    return image.layout;
}

}  // namespace keel::x86::acpi
