#include "arch/x86_64/acpi/dsdt.h"

#include <cstdio>
#include <string>

#include "arch/x86_64/acpi/acpi_tables.h"
#include "arch/x86_64/layout.h"
#include "common/error.h"

namespace keel::x86::acpi {

namespace {

using aml::ResourceTemplate;

// Name(_S5, Package() {SLP_TYPa, SLP_TYPb, reserved, reserved}) (ACPI 6.4
// §7.4.2). Only SLP_TYPa matters: a hardware-reduced guest writes it into the
// sleep control register (§4.8.3.7) and there is no PM1b block. Linux
// registers ACPI power-off only when \_S5 evaluates and, on hardware-reduced
// platforms, the FADT has both sleep registers (acpi_sleep_state_supported()).
aml::Bytes sleep_state_s5() {
    return aml::name("_S5_", aml::package({aml::integer(kAcpiS5SleepType), aml::integer(0), aml::integer(0),
                                           aml::integer(0)}));
}

// COM1, as on every PC (PNP0501: 16550A-compatible). The 8250 driver
// registers the legacy port first; its PNP probe then finds this same port and
// takes the IRQ from here, so both must agree with layout.h.
aml::Bytes com1() {
    ResourceTemplate crs;
    crs.io(kSerialCom1Port, static_cast<uint8_t>(kSerialPortCount))
        .irq_no_flags(static_cast<uint8_t>(kSerialCom1Irq));
    return aml::device("COM1", {
        aml::name("_HID", aml::eisa_id("PNP0501")),
        aml::name("_UID", aml::integer(1)),
        aml::name("_CRS", crs.encode()),
    });
}

// The i8042 keyboard controller (PNP0303). Linux's i8042 driver reads the
// data port, command port and IRQ from the first two IO resources and the
// first IRQ of this device (i8042_pnp_kbd_probe). No PNP0F13 mouse device is
// listed: keel's controller has no AUX port, and without one Linux sets
// i8042.noaux itself instead of probing for a mouse.
aml::Bytes i8042_keyboard() {
    ResourceTemplate crs;
    crs.io(kI8042DataPort, 1).io(kI8042CommandPort, 1).irq_no_flags(static_cast<uint8_t>(kI8042KeyboardIrq));
    return aml::device("KBD_", {
        aml::name("_HID", aml::eisa_id("PNP0303")),
        aml::name("_CRS", crs.encode()),
    });
}

std::string virtio_mmio_name(uint32_t index) {
    if (index > 0xfff) throw Error("virtio-mmio device index " + std::to_string(index) + " exceeds 4095");
    char name[8];
    std::snprintf(name, sizeof name, "V%03X", index);
    return name;
}

}  // namespace

AmlDevice virtio_mmio_device(uint32_t index, Gpa base, uint64_t size, uint32_t gsi) {
    if (size == 0 || size > UINT32_MAX || base.value > UINT32_MAX || size - 1 > UINT32_MAX - base.value) {
        throw Error("virtio-mmio device " + std::to_string(index) +
                    ": its register window must be non-empty and lie below 4 GiB");
    }
    ResourceTemplate crs;
    // Level-triggered, as virtio-mmio's InterruptStatus is a level (and as
    // QEMU's microvm describes it): keel drives the line through a resampling
    // irqfd, high until the guest's EOI finds every cause acknowledged. The
    // guest's fasteoi handler acknowledges before that EOI, so one interrupt
    // serves every cause it saw, and none raised since is lost.
    crs.memory32_fixed(aml::MemoryAccess::kReadWrite, static_cast<uint32_t>(base.value), static_cast<uint32_t>(size))
        .interrupt(gsi, aml::InterruptTrigger::kLevel, aml::InterruptPolarity::kActiveHigh,
                   aml::InterruptSharing::kExclusive);
    return AmlDevice{virtio_mmio_name(index), {
        aml::name("_HID", aml::string("LNRO0005")),
        aml::name("_UID", aml::integer(index)),
        aml::name("_CRS", crs.encode()),
    }};
}

aml::Bytes build_dsdt_aml(std::span<const AmlDevice> devices) {
    std::vector<aml::Bytes> system_bus{com1(), i8042_keyboard()};
    for (const auto& device : devices) system_bus.push_back(aml::device(device.name, device.objects));
    aml::Bytes body = sleep_state_s5();
    // "_SB_" rather than "\_SB_": at the root both name the same scope, and the
    // relative form is what iasl emits, keeping the output byte-identical.
    const aml::Bytes sb = aml::scope("_SB_", system_bus);
    body.insert(body.end(), sb.begin(), sb.end());
    return body;
}

std::vector<uint8_t> build_dsdt(std::span<const AmlDevice> devices) {
    const aml::Bytes body = build_dsdt_aml(devices);
    const size_t length = sizeof(SdtHeader) + body.size();
    if (length > UINT32_MAX) throw Error("the DSDT exceeds 4 GiB");
    std::vector<uint8_t> table;
    append_wire(table, make_sdt_header(kAcpiSigDsdt, static_cast<uint32_t>(length), kDsdtRevision));
    table.insert(table.end(), body.begin(), body.end());
    finish_sdt(table);
    return table;
}

}  // namespace keel::x86::acpi
