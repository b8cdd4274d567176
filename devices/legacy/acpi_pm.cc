#include "legacy/acpi_pm.h"

namespace keel {

namespace {

// Register offsets inside the device, from the ports the FADT advertises.
constexpr uint64_t kSleepControl = 0;
constexpr uint64_t kSleepStatus = x86::kAcpiSleepStatusPort - x86::kAcpiSleepControlPort;
constexpr uint64_t kReset = x86::kAcpiResetPort - x86::kAcpiSleepControlPort;
static_assert(x86::kAcpiSleepStatusPort > x86::kAcpiSleepControlPort && kSleepStatus < AcpiPm::kPortCount);
static_assert(x86::kAcpiResetPort > x86::kAcpiSleepControlPort && kReset < AcpiPm::kPortCount);
static_assert(kSleepStatus != kReset);

// Sleep control register (ACPI 6.4 §4.8.3.7): SLP_TYPx in bits 4:2, SLP_EN
// in bit 5 (Linux: ACPI_X_SLEEP_TYPE_MASK, ACPI_X_SLEEP_ENABLE).
constexpr uint8_t kSleepTypeShift = 2;
constexpr uint8_t kSleepTypeMask = 0x1c;
constexpr uint8_t kSleepEnable = 0x20;
static_assert((x86::kAcpiS5SleepType << kSleepTypeShift) <= kSleepTypeMask);
// Sleep status register: WAK_STS in bit 7, write 1 to clear (ACPI_X_WAKE_STATUS).
constexpr uint8_t kWakeStatus = 0x80;

}  // namespace

AcpiPm::AcpiPm(VmLifecycle& lifecycle) : m_lifecycle(lifecycle) {}

void AcpiPm::read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_mutex);
    for (size_t i = 0; i < data.size(); ++i) {
        // Sleep control and reset are write-only; reads return 0.
        data[i] = offset + i == kSleepStatus ? m_sleep_status : 0;
    }
}

void AcpiPm::write(uint64_t offset, std::span<const uint8_t> data) {
    VmExitRequest request{};
    bool exit_now = false;
    {
        std::lock_guard lock(m_mutex);
        // A wide access reaches consecutive byte registers (the FADT declares
        // them 8 bits wide, but the guest decides the access size).
        for (size_t i = 0; i < data.size() && !exit_now; ++i) {
            exit_now = write_register(offset + i, data[i], request);
        }
        if (exit_now && m_exit_requested) exit_now = false;  // already on its way out
        if (exit_now) m_exit_requested = true;
    }
    if (exit_now) m_lifecycle.request_exit(request);
}

bool AcpiPm::write_register(uint64_t offset, uint8_t value, VmExitRequest& request) {
    switch (offset) {
        case kSleepControl: return write_sleep_control(value, request);
        case kSleepStatus: m_sleep_status &= static_cast<uint8_t>(~(value & kWakeStatus)); return false;
        case kReset:
            // Any other value is not a reset (§4.8.3.6: the OS writes RESET_VALUE).
            if (value != x86::kAcpiResetValue) return false;
            request = VmExitRequest::Reboot;
            return true;
        default: return false;
    }
}

bool AcpiPm::write_sleep_control(uint8_t value, VmExitRequest& request) {
    if ((value & kSleepEnable) == 0) return false;
    const auto sleep_type = static_cast<uint8_t>((value & kSleepTypeMask) >> kSleepTypeShift);
    if (sleep_type == x86::kAcpiS5SleepType) {
        request = VmExitRequest::PowerOff;
        return true;
    }
    // S1-S4 are not offered; wake at once so a guest polling WAK_STS (Linux's
    // acpi_hw_extended_sleep) does not spin forever.
    m_sleep_status |= kWakeStatus;
    return false;
}

}  // namespace keel
