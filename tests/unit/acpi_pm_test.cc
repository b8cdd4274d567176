#include <catch2/catch.hpp>

#include <array>
#include <vector>

#include "device_fakes.h"
#include "arch/x86_64/layout.h"
#include "bus/bus.h"
#include "legacy/acpi_pm.h"

using namespace keel;
using keel::test::CountingIrq;
using keel::test::RecordingLifecycle;

namespace {

constexpr uint8_t kSleepEnable = 0x20;
constexpr uint8_t kWakeStatus = 0x80;

constexpr uint8_t sleep_control(uint8_t sleep_type, bool enable) {
    return static_cast<uint8_t>((sleep_type << 2) | (enable ? kSleepEnable : 0));
}

// The device as the guest sees it: on the port bus at the FADT's ports.
class AcpiFixture {
public:
    AcpiFixture() { pio.insert(std::make_shared<AcpiPm>(lifecycle), x86::kAcpiSleepControlPort, AcpiPm::kPortCount, "acpi-pm"); }

    void out(uint16_t port, uint8_t value) {
        const std::array<uint8_t, 1> b{value};
        REQUIRE(pio.write(port, b));
    }
    uint8_t in(uint16_t port) {
        std::array<uint8_t, 1> b{0xee};
        REQUIRE(pio.read(port, b));
        return b[0];
    }

    RecordingLifecycle lifecycle;
    Bus pio{BusKind::Pio};
};

}  // namespace

TEST_CASE("ACPI sleep control: SLP_EN with SLP_TYP S5 powers off", "[acpi_pm][legacy]") {
    AcpiFixture acpi;
    // Linux's acpi_hw_extended_sleep(): clear WAK_STS, then write SLP_TYP | SLP_EN.
    acpi.out(x86::kAcpiSleepStatusPort, kWakeStatus);
    acpi.out(x86::kAcpiSleepControlPort, sleep_control(x86::kAcpiS5SleepType, true));
    REQUIRE(acpi.lifecycle.requests.size() == 1);
    CHECK(acpi.lifecycle.requests[0] == VmExitRequest::PowerOff);
    // The guest may keep writing while its vCPUs are being stopped.
    acpi.out(x86::kAcpiSleepControlPort, sleep_control(x86::kAcpiS5SleepType, true));
    acpi.out(x86::kAcpiResetPort, x86::kAcpiResetValue);
    CHECK(acpi.lifecycle.requests.size() == 1);
}

TEST_CASE("ACPI sleep control ignores other sleep types and writes without SLP_EN", "[acpi_pm][legacy]") {
    AcpiFixture acpi;
    acpi.out(x86::kAcpiSleepControlPort, sleep_control(x86::kAcpiS5SleepType, false));
    CHECK(acpi.in(x86::kAcpiSleepStatusPort) == 0);
    for (uint8_t type = 0; type < 8; ++type) {
        if (type != x86::kAcpiS5SleepType) acpi.out(x86::kAcpiSleepControlPort, sleep_control(type, true));
    }
    CHECK(acpi.lifecycle.requests.empty());
    // An unimplemented sleep state "wakes" at once so a polling guest carries on;
    // WAK_STS is write-1-to-clear.
    CHECK(acpi.in(x86::kAcpiSleepStatusPort) == kWakeStatus);
    acpi.out(x86::kAcpiSleepStatusPort, 0x01);
    CHECK(acpi.in(x86::kAcpiSleepStatusPort) == kWakeStatus);
    acpi.out(x86::kAcpiSleepStatusPort, kWakeStatus);
    CHECK(acpi.in(x86::kAcpiSleepStatusPort) == 0);
    CHECK(acpi.in(x86::kAcpiSleepControlPort) == 0);
    CHECK(acpi.in(x86::kAcpiResetPort) == 0);
}

TEST_CASE("ACPI reset register reboots on RESET_VALUE only", "[acpi_pm][legacy]") {
    AcpiFixture acpi;
    for (const uint8_t wrong : std::array<uint8_t, 5>{0x00, 0x02, 0x06, 0x0e, 0xff}) {
        if (wrong != x86::kAcpiResetValue) acpi.out(x86::kAcpiResetPort, wrong);
    }
    CHECK(acpi.lifecycle.requests.empty());
    acpi.out(x86::kAcpiResetPort, x86::kAcpiResetValue);
    REQUIRE(acpi.lifecycle.requests.size() == 1);
    CHECK(acpi.lifecycle.requests[0] == VmExitRequest::Reboot);
}

TEST_CASE("ACPI registers take a wide access byte by byte", "[acpi_pm][legacy]") {
    AcpiFixture acpi;
    // A 2-byte write at the status port reaches status and reset.
    const std::array<uint8_t, 2> wide{kWakeStatus, x86::kAcpiResetValue};
    REQUIRE(acpi.pio.write(x86::kAcpiSleepStatusPort, wide));
    REQUIRE(acpi.lifecycle.requests.size() == 1);
    CHECK(acpi.lifecycle.requests[0] == VmExitRequest::Reboot);
}
