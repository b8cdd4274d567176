#pragma once

// The two virtio transports as a driver sees them (virtio 1.2 §4.1 PCI,
// §4.2 MMIO), behind one interface so that every attack runs on both. The
// accessors are raw: they write what they are given, valid or not, because
// attacking keel is the point.

#include <linux/virtio_mmio.h>
#include <linux/virtio_pci.h>
#include <stdint.h>

namespace hostile {

class Transport {
public:
    [[nodiscard]] virtual const char* name() const = 0;  // "mmio" or "pci"
    [[nodiscard]] virtual uint32_t device_id() = 0;

    [[nodiscard]] virtual uint8_t status() = 0;
    virtual void write_status(uint8_t value) = 0;

    [[nodiscard]] virtual uint64_t device_features() = 0;
    virtual void write_driver_features(uint64_t features) = 0;
    [[nodiscard]] virtual uint64_t driver_features() = 0;

    virtual void select_queue(uint16_t index) = 0;
    // The selected queue's maximum size; 0 when the index names no queue.
    [[nodiscard]] virtual uint16_t queue_max() = 0;
    virtual void write_queue_size(uint16_t size) = 0;
    [[nodiscard]] virtual uint16_t queue_size() = 0;
    virtual void write_queue_rings(uint64_t desc, uint64_t avail, uint64_t used) = 0;
    [[nodiscard]] virtual uint64_t queue_desc() = 0;
    virtual void write_queue_ready(uint32_t value) = 0;
    [[nodiscard]] virtual bool queue_ready() = 0;
    // A notification for `queue`, which need not exist.
    virtual void notify(uint16_t queue) = 0;

    [[nodiscard]] virtual uint8_t config8(uint32_t offset) = 0;
    virtual void write_config8(uint32_t offset, uint8_t value) = 0;

    // The device's register window (MMIO: its 4 KiB window; PCI: BAR 0),
    // for out-of-range accesses.
    [[nodiscard]] virtual uint64_t window_base() const = 0;
    [[nodiscard]] virtual uint64_t window_size() const = 0;
    // The guest-physical address of the device-status register.
    [[nodiscard]] virtual uint64_t status_register() const = 0;
    [[nodiscard]] virtual bool is_pci() const = 0;

protected:
    // Never deleted through the interface (this guest has no heap).
    ~Transport() = default;
};

// A virtio-mmio device window at `base` (docs/guest-abi.md §5.2).
class MmioTransport final : public Transport {
public:
    MmioTransport() = default;
    void set_base(uint64_t base) { m_base = base; }
    [[nodiscard]] const char* name() const override { return "mmio"; }
    [[nodiscard]] uint32_t device_id() override;
    [[nodiscard]] uint8_t status() override;
    void write_status(uint8_t value) override;
    [[nodiscard]] uint64_t device_features() override;
    void write_driver_features(uint64_t features) override;
    [[nodiscard]] uint64_t driver_features() override;
    void select_queue(uint16_t index) override;
    [[nodiscard]] uint16_t queue_max() override;
    void write_queue_size(uint16_t size) override;
    [[nodiscard]] uint16_t queue_size() override;
    void write_queue_rings(uint64_t desc, uint64_t avail, uint64_t used) override;
    [[nodiscard]] uint64_t queue_desc() override;
    void write_queue_ready(uint32_t value) override;
    [[nodiscard]] bool queue_ready() override;
    void notify(uint16_t queue) override;
    [[nodiscard]] uint8_t config8(uint32_t offset) override;
    void write_config8(uint32_t offset, uint8_t value) override;
    [[nodiscard]] uint64_t window_base() const override { return m_base; }
    [[nodiscard]] uint64_t window_size() const override { return 0x1000; }
    [[nodiscard]] uint64_t status_register() const override { return m_base + VIRTIO_MMIO_STATUS; }
    [[nodiscard]] bool is_pci() const override { return false; }

    // The magic value and version 2 (the modern layout) are there.
    [[nodiscard]] static bool present(uint64_t base);

private:
    [[nodiscard]] uint32_t read32(uint32_t offset) const;
    void write32(uint32_t offset, uint32_t value) const;
    uint64_t m_base = 0;
};

// A virtio-pci function on bus 0, found by scanning configuration space.
class PciTransport final : public Transport {
public:
    // Enables memory decoding and reads the capabilities; false when the
    // function lacks one of the structures a modern device must have.
    bool init(uint8_t slot);
    [[nodiscard]] const char* name() const override { return "pci"; }
    [[nodiscard]] uint32_t device_id() override;
    [[nodiscard]] uint8_t status() override;
    void write_status(uint8_t value) override;
    [[nodiscard]] uint64_t device_features() override;
    void write_driver_features(uint64_t features) override;
    [[nodiscard]] uint64_t driver_features() override;
    void select_queue(uint16_t index) override;
    [[nodiscard]] uint16_t queue_max() override;
    void write_queue_size(uint16_t size) override;
    [[nodiscard]] uint16_t queue_size() override;
    void write_queue_rings(uint64_t desc, uint64_t avail, uint64_t used) override;
    [[nodiscard]] uint64_t queue_desc() override;
    void write_queue_ready(uint32_t value) override;
    [[nodiscard]] bool queue_ready() override;
    void notify(uint16_t queue) override;
    [[nodiscard]] uint8_t config8(uint32_t offset) override;
    void write_config8(uint32_t offset, uint8_t value) override;
    [[nodiscard]] uint64_t window_base() const override { return m_bar; }
    [[nodiscard]] uint64_t window_size() const override { return m_bar_size; }
    [[nodiscard]] uint64_t status_register() const override { return m_common + VIRTIO_PCI_COMMON_STATUS; }
    [[nodiscard]] bool is_pci() const override { return true; }

    [[nodiscard]] uint8_t slot() const { return m_slot; }
    [[nodiscard]] uint8_t msix_capability() const { return m_msix_cap; }
    // The MSI-X table's guest-physical address and entry count.
    [[nodiscard]] uint64_t msix_table() const { return m_msix_table; }
    [[nodiscard]] uint16_t msix_entries() const { return m_msix_entries; }
    [[nodiscard]] uint64_t msix_pba() const { return m_msix_pba; }
    void write_queue_vector(uint16_t vector);
    [[nodiscard]] uint16_t queue_vector();
    void write_config_vector(uint16_t vector);
    [[nodiscard]] uint16_t config_vector();

    // Configuration mechanism #1 (ports 0xCF8/0xCFC).
    [[nodiscard]] static uint32_t config_read32(uint8_t slot, uint16_t offset);
    static void config_write32(uint8_t slot, uint16_t offset, uint32_t value);
    [[nodiscard]] static uint16_t config_read16(uint8_t slot, uint16_t offset);
    static void config_write16(uint8_t slot, uint16_t offset, uint16_t value);
    [[nodiscard]] static uint8_t config_read8(uint8_t slot, uint16_t offset);

private:
    uint8_t m_slot = 0;
    uint64_t m_bar = 0;
    uint64_t m_bar_size = 0;
    uint64_t m_common = 0;
    uint64_t m_notify = 0;
    uint32_t m_notify_multiplier = 0;
    uint64_t m_device_cfg = 0;
    uint32_t m_device_cfg_length = 0;
    uint8_t m_msix_cap = 0;
    uint64_t m_msix_table = 0;
    uint64_t m_msix_pba = 0;
    uint16_t m_msix_entries = 0;
};

}  // namespace hostile
