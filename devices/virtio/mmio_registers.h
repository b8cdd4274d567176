#pragma once

#include <linux/virtio_mmio.h>

#include <array>
#include <cstdint>
#include <optional>

namespace keel::virtio {

// The virtio-mmio register file, version 2 (virtio 1.2 §4.2.2, Table
// "MMIO Device Register Layout"), one row per register, in the table's
// order, so a reviewer can diff it against the spec. Offsets come from
// <linux/virtio_mmio.h>. Every register is 32 bits wide and is accessed
// with aligned 32-bit loads/stores only (§4.2.2.2); the device-specific
// configuration space at VIRTIO_MMIO_CONFIG (0x100) is not in this table.
// The legacy-only registers (GuestPageSize 0x028, QueueAlign 0x03c,
// QueuePFN 0x040) do not exist in version 2 and are treated like any
// unknown offset.

enum class MmioReg : uint8_t {
    MagicValue,
    Version,
    DeviceId,
    VendorId,
    DeviceFeatures,
    DeviceFeaturesSel,
    DriverFeatures,
    DriverFeaturesSel,
    QueueSel,
    QueueNumMax,
    QueueNum,
    QueueReady,
    QueueNotify,
    InterruptStatus,
    InterruptAck,
    Status,
    QueueDescLow,
    QueueDescHigh,
    QueueDriverLow,
    QueueDriverHigh,
    QueueDeviceLow,
    QueueDeviceHigh,
    ShmSel,
    ShmLenLow,
    ShmLenHigh,
    ShmBaseLow,
    ShmBaseHigh,
    ConfigGeneration,
};

enum class MmioAccess : uint8_t { ReadOnly, WriteOnly, ReadWrite };

// "Reset value" is what the register reads after a reset, for a device with
// no queue selected and nothing negotiated. kDeviceDefined marks registers
// whose value comes from the device (its ID, features, queue maximum).
struct MmioRegister {
    MmioReg reg;
    const char* name;
    uint32_t offset;
    uint8_t width;
    MmioAccess access;
    std::optional<uint32_t> reset_value;
};

inline constexpr uint32_t kMmioMagic = 0x74726976;  // "virt" little-endian (§4.2.2)
inline constexpr uint32_t kMmioVersion = 2;         // the non-legacy interface
// keel's own vendor ID: "KEEL" little-endian (bytes 'K','E','E','L' in
// memory). The spec leaves the vendor ID to the implementation; Linux only
// prints it.
inline constexpr uint32_t kKeelVendorId = 0x4c45454b;
// Read as the length and base of a shared memory region that does not exist
// (§4.2.2: "a length of -1"); keel has no shared memory regions.
inline constexpr uint32_t kNoShmRegion = 0xffffffff;
// The size of one virtio-mmio window: registers, then the config space.
inline constexpr uint64_t kMmioWindowSize = 0x1000;

inline constexpr std::optional<uint32_t> kDeviceDefined = std::nullopt;

// clang-format off
inline constexpr std::array<MmioRegister, 28> kMmioRegisters{{
    // register, name (as in the spec table), offset, width, access, reset value
    {MmioReg::MagicValue, "MagicValue", VIRTIO_MMIO_MAGIC_VALUE, 4, MmioAccess::ReadOnly,  kMmioMagic},
    {MmioReg::Version, "Version", VIRTIO_MMIO_VERSION, 4, MmioAccess::ReadOnly,  kMmioVersion},
    {MmioReg::DeviceId, "DeviceID", VIRTIO_MMIO_DEVICE_ID, 4, MmioAccess::ReadOnly,  kDeviceDefined},
    {MmioReg::VendorId, "VendorID", VIRTIO_MMIO_VENDOR_ID, 4, MmioAccess::ReadOnly,  kKeelVendorId},
    {MmioReg::DeviceFeatures, "DeviceFeatures", VIRTIO_MMIO_DEVICE_FEATURES, 4, MmioAccess::ReadOnly,  kDeviceDefined},
    {MmioReg::DeviceFeaturesSel, "DeviceFeaturesSel", VIRTIO_MMIO_DEVICE_FEATURES_SEL, 4, MmioAccess::WriteOnly, 0},
    {MmioReg::DriverFeatures, "DriverFeatures", VIRTIO_MMIO_DRIVER_FEATURES, 4, MmioAccess::WriteOnly, 0},
    {MmioReg::DriverFeaturesSel, "DriverFeaturesSel", VIRTIO_MMIO_DRIVER_FEATURES_SEL, 4, MmioAccess::WriteOnly, 0},
    {MmioReg::QueueSel, "QueueSel", VIRTIO_MMIO_QUEUE_SEL, 4, MmioAccess::WriteOnly, 0},
    {MmioReg::QueueNumMax, "QueueNumMax", VIRTIO_MMIO_QUEUE_NUM_MAX, 4, MmioAccess::ReadOnly,  kDeviceDefined},
    {MmioReg::QueueNum, "QueueNum", VIRTIO_MMIO_QUEUE_NUM, 4, MmioAccess::WriteOnly, kDeviceDefined},
    {MmioReg::QueueReady, "QueueReady", VIRTIO_MMIO_QUEUE_READY, 4, MmioAccess::ReadWrite, 0},
    {MmioReg::QueueNotify, "QueueNotify", VIRTIO_MMIO_QUEUE_NOTIFY, 4, MmioAccess::WriteOnly, 0},
    {MmioReg::InterruptStatus, "InterruptStatus", VIRTIO_MMIO_INTERRUPT_STATUS, 4, MmioAccess::ReadOnly,  0},
    {MmioReg::InterruptAck, "InterruptACK", VIRTIO_MMIO_INTERRUPT_ACK, 4, MmioAccess::WriteOnly, 0},
    {MmioReg::Status, "Status", VIRTIO_MMIO_STATUS, 4, MmioAccess::ReadWrite, 0},
    {MmioReg::QueueDescLow, "QueueDescLow", VIRTIO_MMIO_QUEUE_DESC_LOW, 4, MmioAccess::WriteOnly, 0},
    {MmioReg::QueueDescHigh, "QueueDescHigh", VIRTIO_MMIO_QUEUE_DESC_HIGH, 4, MmioAccess::WriteOnly, 0},
    {MmioReg::QueueDriverLow, "QueueDriverLow", VIRTIO_MMIO_QUEUE_AVAIL_LOW, 4, MmioAccess::WriteOnly, 0},
    {MmioReg::QueueDriverHigh, "QueueDriverHigh", VIRTIO_MMIO_QUEUE_AVAIL_HIGH, 4, MmioAccess::WriteOnly, 0},
    {MmioReg::QueueDeviceLow, "QueueDeviceLow", VIRTIO_MMIO_QUEUE_USED_LOW, 4, MmioAccess::WriteOnly, 0},
    {MmioReg::QueueDeviceHigh, "QueueDeviceHigh", VIRTIO_MMIO_QUEUE_USED_HIGH, 4, MmioAccess::WriteOnly, 0},
    {MmioReg::ShmSel, "SHMSel", VIRTIO_MMIO_SHM_SEL, 4, MmioAccess::WriteOnly, 0},
    {MmioReg::ShmLenLow, "SHMLenLow", VIRTIO_MMIO_SHM_LEN_LOW, 4, MmioAccess::ReadOnly,  kNoShmRegion},
    {MmioReg::ShmLenHigh, "SHMLenHigh", VIRTIO_MMIO_SHM_LEN_HIGH, 4, MmioAccess::ReadOnly,  kNoShmRegion},
    {MmioReg::ShmBaseLow, "SHMBaseLow", VIRTIO_MMIO_SHM_BASE_LOW, 4, MmioAccess::ReadOnly,  kNoShmRegion},
    {MmioReg::ShmBaseHigh, "SHMBaseHigh", VIRTIO_MMIO_SHM_BASE_HIGH, 4, MmioAccess::ReadOnly,  kNoShmRegion},
    {MmioReg::ConfigGeneration, "ConfigGeneration", VIRTIO_MMIO_CONFIG_GENERATION, 4, MmioAccess::ReadOnly,  0},
}};
// clang-format on

// The row at `offset`, or nullptr when no register lives there.
[[nodiscard]] constexpr const MmioRegister* find_mmio_register(uint64_t offset) {
    for (const MmioRegister& r : kMmioRegisters) {
        if (r.offset == offset) return &r;
    }
    return nullptr;
}

[[nodiscard]] constexpr bool mmio_readable(const MmioRegister& r) {
    return r.access != MmioAccess::WriteOnly;
}
[[nodiscard]] constexpr bool mmio_writable(const MmioRegister& r) {
    return r.access != MmioAccess::ReadOnly;
}

}  // namespace keel::virtio
