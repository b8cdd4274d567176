#pragma once

// The virtio-pci common configuration structure (virtio 1.2 §4.1.4.3,
// struct virtio_pci_common_cfg in <linux/virtio_pci.h>) as a declarative
// table, one row per field in the spec's order, so a reviewer can diff it
// against the spec. Offsets are the UAPI's VIRTIO_PCI_COMMON_* constants,
// checked against offsetof() below.
//
// Access rules (§4.1.3.1): every field is accessed with its natural width
// (8, 16 or 32 bits); the 64-bit queue addresses may be accessed as their
// two 32-bit halves (the rows below, which is what Linux does with
// vp_iowrite64_twopart) or, as keel also accepts, with one aligned 64-bit
// access at the _lo offset. queue_notify_data (56) and queue_reset (58) only
// exist with VIRTIO_F_NOTIF_CONFIG_DATA / VIRTIO_F_RING_RESET, which keel
// does not offer, so the structure is the 56 bytes of virtio_pci_common_cfg.

#include <linux/virtio_pci.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace keel::virtio {

enum class CommonReg : uint8_t {
    DeviceFeatureSelect,
    DeviceFeature,
    DriverFeatureSelect,
    DriverFeature,
    ConfigMsixVector,
    NumQueues,
    DeviceStatus,
    ConfigGeneration,
    QueueSelect,
    QueueSize,
    QueueMsixVector,
    QueueEnable,
    QueueNotifyOff,
    QueueDescLo,
    QueueDescHi,
    QueueDriverLo,
    QueueDriverHi,
    QueueDeviceLo,
    QueueDeviceHi,
};

// The spec marks each field "read-write" or "read-only" for the driver.
enum class CommonAccess : uint8_t { ReadOnly, ReadWrite };

// "Reset value" is what the field reads after a device reset (§2.4), with
// queue 0 selected; kCommonDeviceDefined marks fields whose value comes from
// the device (features, queue count, queue maximum) or survives a reset (the
// configuration generation counter).
struct CommonRegister {
    CommonReg reg;
    const char* name;  // as in the spec
    uint8_t offset;
    uint8_t width;  // bytes
    CommonAccess access;
    std::optional<uint32_t> reset_value;
};

inline constexpr uint8_t kCommonCfgSize = sizeof(virtio_pci_common_cfg);
static_assert(kCommonCfgSize == 56);
// §4.1.4.3 / §4.1.5.1.2: the vector registers read this when no vector is
// assigned, after a reset, and when the vector written cannot be used.
inline constexpr uint16_t kNoVector = VIRTIO_MSI_NO_VECTOR;
inline constexpr std::optional<uint32_t> kCommonDeviceDefined = std::nullopt;

// clang-format off
inline constexpr std::array<CommonRegister, 19> kCommonRegisters{{
    // register, name, offset, width, access, reset value
    {CommonReg::DeviceFeatureSelect, "device_feature_select", VIRTIO_PCI_COMMON_DFSELECT,      4, CommonAccess::ReadWrite, 0},
    {CommonReg::DeviceFeature,       "device_feature",        VIRTIO_PCI_COMMON_DF,            4, CommonAccess::ReadOnly,  kCommonDeviceDefined},
    {CommonReg::DriverFeatureSelect, "driver_feature_select", VIRTIO_PCI_COMMON_GFSELECT,      4, CommonAccess::ReadWrite, 0},
    {CommonReg::DriverFeature,       "driver_feature",        VIRTIO_PCI_COMMON_GF,            4, CommonAccess::ReadWrite, 0},
    {CommonReg::ConfigMsixVector,    "config_msix_vector",    VIRTIO_PCI_COMMON_MSIX,          2, CommonAccess::ReadWrite, kNoVector},
    {CommonReg::NumQueues,           "num_queues",            VIRTIO_PCI_COMMON_NUMQ,          2, CommonAccess::ReadOnly,  kCommonDeviceDefined},
    {CommonReg::DeviceStatus,        "device_status",         VIRTIO_PCI_COMMON_STATUS,        1, CommonAccess::ReadWrite, 0},
    {CommonReg::ConfigGeneration,    "config_generation",     VIRTIO_PCI_COMMON_CFGGENERATION, 1, CommonAccess::ReadOnly,  kCommonDeviceDefined},
    {CommonReg::QueueSelect,         "queue_select",          VIRTIO_PCI_COMMON_Q_SELECT,      2, CommonAccess::ReadWrite, 0},
    {CommonReg::QueueSize,           "queue_size",            VIRTIO_PCI_COMMON_Q_SIZE,        2, CommonAccess::ReadWrite, kCommonDeviceDefined},
    {CommonReg::QueueMsixVector,     "queue_msix_vector",     VIRTIO_PCI_COMMON_Q_MSIX,        2, CommonAccess::ReadWrite, kNoVector},
    {CommonReg::QueueEnable,         "queue_enable",          VIRTIO_PCI_COMMON_Q_ENABLE,      2, CommonAccess::ReadWrite, 0},
    {CommonReg::QueueNotifyOff,      "queue_notify_off",      VIRTIO_PCI_COMMON_Q_NOFF,        2, CommonAccess::ReadOnly,  0},
    {CommonReg::QueueDescLo,         "queue_desc (low)",      VIRTIO_PCI_COMMON_Q_DESCLO,      4, CommonAccess::ReadWrite, 0},
    {CommonReg::QueueDescHi,         "queue_desc (high)",     VIRTIO_PCI_COMMON_Q_DESCHI,      4, CommonAccess::ReadWrite, 0},
    {CommonReg::QueueDriverLo,       "queue_driver (low)",    VIRTIO_PCI_COMMON_Q_AVAILLO,     4, CommonAccess::ReadWrite, 0},
    {CommonReg::QueueDriverHi,       "queue_driver (high)",   VIRTIO_PCI_COMMON_Q_AVAILHI,     4, CommonAccess::ReadWrite, 0},
    {CommonReg::QueueDeviceLo,       "queue_device (low)",    VIRTIO_PCI_COMMON_Q_USEDLO,      4, CommonAccess::ReadWrite, 0},
    {CommonReg::QueueDeviceHi,       "queue_device (high)",   VIRTIO_PCI_COMMON_Q_USEDHI,      4, CommonAccess::ReadWrite, 0},
}};
// clang-format on

// The UAPI's offset macros and its struct agree (Linux checks the same in
// virtio_pci_modern_dev.c); so do the widths.
static_assert(VIRTIO_PCI_COMMON_DFSELECT == offsetof(virtio_pci_common_cfg, device_feature_select));
static_assert(VIRTIO_PCI_COMMON_GF == offsetof(virtio_pci_common_cfg, guest_feature));
static_assert(VIRTIO_PCI_COMMON_MSIX == offsetof(virtio_pci_common_cfg, msix_config));
static_assert(VIRTIO_PCI_COMMON_STATUS == offsetof(virtio_pci_common_cfg, device_status));
static_assert(VIRTIO_PCI_COMMON_CFGGENERATION == offsetof(virtio_pci_common_cfg, config_generation));
static_assert(VIRTIO_PCI_COMMON_Q_MSIX == offsetof(virtio_pci_common_cfg, queue_msix_vector));
static_assert(VIRTIO_PCI_COMMON_Q_NOFF == offsetof(virtio_pci_common_cfg, queue_notify_off));
static_assert(VIRTIO_PCI_COMMON_Q_USEDHI == offsetof(virtio_pci_common_cfg, queue_used_hi));
static_assert(sizeof(virtio_pci_common_cfg::device_status) == 1 && sizeof(virtio_pci_common_cfg::queue_size) == 2);

// The row at `offset`, or nullptr when no field starts there.
[[nodiscard]] constexpr const CommonRegister* find_common_register(uint64_t offset) {
    for (const CommonRegister& r : kCommonRegisters) {
        if (r.offset == offset) return &r;
    }
    return nullptr;
}

}  // namespace keel::virtio
