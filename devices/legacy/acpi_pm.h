#pragma once

#include <cstdint>
#include <mutex>
#include <span>

#include "arch/x86_64/layout.h"
#include "bus/bus_device.h"

namespace keel {

// The fixed registers of an ACPI hardware-reduced platform (ACPI 6.4 §4.1):
// sleep control (§4.8.3.7), sleep status (§4.8.3.7) and reset (§4.8.3.6),
// one byte each at consecutive ports. Insert at x86::kAcpiSleepControlPort for
// kPortCount ports; the FADT's SLEEP_CONTROL_REG, SLEEP_STATUS_REG and
// RESET_REG point at the same ports.
//
// A sleep-control write of SLP_EN with SLP_TYP == x86::kAcpiS5SleepType powers
// the VM off; a write of x86::kAcpiResetValue to the reset register reboots it.
// Sleep states keel does not implement (the DSDT offers only \_S5_) wake up at
// once: WAK_STS is set, so a guest that polls for it carries on.
class AcpiPm final : public BusDevice {
public:
    static constexpr uint16_t kPortCount = 3;

    // The VmLifecycle must outlive the device (the VM owns both).
    explicit AcpiPm(VmLifecycle& lifecycle);

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

private:
    [[nodiscard]] bool write_register(uint64_t offset, uint8_t value, VmExitRequest& request);
    [[nodiscard]] bool write_sleep_control(uint8_t value, VmExitRequest& request);

    VmLifecycle& m_lifecycle;
    std::mutex m_mutex;
    uint8_t m_sleep_status = 0;
    bool m_exit_requested = false;  // the first request wins; the guest may repeat it
};

}  // namespace keel
