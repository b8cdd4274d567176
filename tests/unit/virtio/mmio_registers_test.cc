// The virtio-mmio register file against virtio 1.2 §4.2.2: layout,
// identification, feature windows, queue registers, config space, interrupt
// status, notifications and bad accesses.

#include <catch2/catch.hpp>

#include <linux/virtio_mmio.h>

#include <array>
#include <cstring>
#include <set>

#include "mmio_harness.h"
#include "virtio/mmio_registers.h"

using namespace keel;
using namespace keel::test;
using keel::virtio::MmioAccess;
using keel::virtio::MmioReg;

namespace {
using Harness = MmioHarness<ScriptedDevice>;
}  // namespace

TEST_CASE("The virtio-mmio register table matches the virtio 1.2 register layout", "[virtio][mmio]") {
    // Offsets and access typed in from §4.2.2, Table "MMIO Device Register Layout".
    struct Row {
        uint32_t offset;
        MmioAccess access;
    };
    const std::array<Row, 28> spec{{
        {0x000, MmioAccess::ReadOnly},  {0x004, MmioAccess::ReadOnly},  {0x008, MmioAccess::ReadOnly},
        {0x00c, MmioAccess::ReadOnly},  {0x010, MmioAccess::ReadOnly},  {0x014, MmioAccess::WriteOnly},
        {0x020, MmioAccess::WriteOnly}, {0x024, MmioAccess::WriteOnly}, {0x030, MmioAccess::WriteOnly},
        {0x034, MmioAccess::ReadOnly},  {0x038, MmioAccess::WriteOnly}, {0x044, MmioAccess::ReadWrite},
        {0x050, MmioAccess::WriteOnly}, {0x060, MmioAccess::ReadOnly},  {0x064, MmioAccess::WriteOnly},
        {0x070, MmioAccess::ReadWrite}, {0x080, MmioAccess::WriteOnly}, {0x084, MmioAccess::WriteOnly},
        {0x090, MmioAccess::WriteOnly}, {0x094, MmioAccess::WriteOnly}, {0x0a0, MmioAccess::WriteOnly},
        {0x0a4, MmioAccess::WriteOnly}, {0x0ac, MmioAccess::WriteOnly}, {0x0b0, MmioAccess::ReadOnly},
        {0x0b4, MmioAccess::ReadOnly},  {0x0b8, MmioAccess::ReadOnly},  {0x0bc, MmioAccess::ReadOnly},
        {0x0fc, MmioAccess::ReadOnly},
    }};
    std::set<uint32_t> seen;
    for (size_t i = 0; i < spec.size(); ++i) {
        const auto& row = virtio::kMmioRegisters[i];
        INFO(row.name);
        CHECK(row.offset == spec[i].offset);
        CHECK(row.access == spec[i].access);
        CHECK(row.width == 4);
        CHECK(seen.insert(row.offset).second);
        CHECK(virtio::find_mmio_register(row.offset) == &row);
    }
    // The legacy-only registers are gone in version 2.
    CHECK(virtio::find_mmio_register(0x028) == nullptr);
    CHECK(virtio::find_mmio_register(0x03c) == nullptr);
    CHECK(virtio::find_mmio_register(0x040) == nullptr);
}

TEST_CASE("Every readable register reads its reset value after a reset", "[virtio][mmio]") {
    Harness h;
    h.negotiate(kVersion1);
    h.write32(VIRTIO_MMIO_STATUS, 0);
    for (const auto& row : virtio::kMmioRegisters) {
        if (!virtio::mmio_readable(row) || !row.reset_value) continue;
        INFO(row.name);
        CHECK(h.read32(row.offset) == *row.reset_value);
    }
}

TEST_CASE("A virtio-mmio device identifies itself with magic, version 2, device ID and keel's vendor ID",
          "[virtio][mmio]") {
    Harness h;
    CHECK(h.read32(VIRTIO_MMIO_MAGIC_VALUE) == 0x74726976);
    CHECK(h.read32(VIRTIO_MMIO_VERSION) == 2);
    CHECK(h.read32(VIRTIO_MMIO_DEVICE_ID) == ScriptedDevice::kType);
    const uint32_t vendor = h.read32(VIRTIO_MMIO_VENDOR_ID);
    CHECK(std::memcmp(&vendor, "KEEL", 4) == 0);
}

TEST_CASE("Device features are read 32 bits at a time through DeviceFeaturesSel", "[virtio][mmio]") {
    Harness h;
    h.write32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    CHECK(h.read32(VIRTIO_MMIO_DEVICE_FEATURES) == static_cast<uint32_t>(ScriptedDevice::kFeatures));
    h.write32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    CHECK(h.read32(VIRTIO_MMIO_DEVICE_FEATURES) == static_cast<uint32_t>(ScriptedDevice::kFeatures >> 32));
    h.write32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
    CHECK(h.read32(VIRTIO_MMIO_DEVICE_FEATURES) == 0);
    h.write32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0xffffffff);
    CHECK(h.read32(VIRTIO_MMIO_DEVICE_FEATURES) == 0);
}

TEST_CASE("Driver features are written 32 bits at a time and reach the device at DRIVER_OK", "[virtio][mmio]") {
    Harness h;
    const uint64_t features = kVersion1 | (1ull << 40);
    REQUIRE(h.negotiate(features));
    CHECK(h.transport.core().acked_features() == features);
    h.driver_ok();
    CHECK(h.device->activations == 1);
    CHECK(h.device->acked == features);
}

TEST_CASE("QueueNumMax reports each queue's maximum and 0 for a queue that does not exist", "[virtio][mmio]") {
    Harness h;
    h.write32(VIRTIO_MMIO_QUEUE_SEL, 0);
    CHECK(h.read32(VIRTIO_MMIO_QUEUE_NUM_MAX) == 16);
    h.write32(VIRTIO_MMIO_QUEUE_SEL, 1);
    CHECK(h.read32(VIRTIO_MMIO_QUEUE_NUM_MAX) == 8);
    h.write32(VIRTIO_MMIO_QUEUE_SEL, 2);
    CHECK(h.read32(VIRTIO_MMIO_QUEUE_NUM_MAX) == 0);
    CHECK(h.read32(VIRTIO_MMIO_QUEUE_READY) == 0);
    h.write32(VIRTIO_MMIO_QUEUE_READY, 1);  // ignored: no such queue
    CHECK(h.read32(VIRTIO_MMIO_QUEUE_READY) == 0);
}

TEST_CASE("QueueReady reads back the last value written to the selected queue", "[virtio][mmio]") {
    Harness h;
    h.write32(VIRTIO_MMIO_QUEUE_SEL, 1);
    h.write32(VIRTIO_MMIO_QUEUE_READY, 1);
    CHECK(h.read32(VIRTIO_MMIO_QUEUE_READY) == 1);
    h.write32(VIRTIO_MMIO_QUEUE_SEL, 0);
    CHECK(h.read32(VIRTIO_MMIO_QUEUE_READY) == 0);
    h.write32(VIRTIO_MMIO_QUEUE_SEL, 1);
    h.write32(VIRTIO_MMIO_QUEUE_READY, 0);
    CHECK(h.read32(VIRTIO_MMIO_QUEUE_READY) == 0);
    h.write32(VIRTIO_MMIO_QUEUE_READY, 7);  // not 0 or 1: ignored
    CHECK(h.read32(VIRTIO_MMIO_QUEUE_READY) == 0);
}

TEST_CASE("Queue size and ring addresses reach the selected queue as two 32-bit halves", "[virtio][mmio]") {
    Harness h;
    h.write32(VIRTIO_MMIO_QUEUE_SEL, 1);
    h.write32(VIRTIO_MMIO_QUEUE_NUM, 4);
    h.write_address(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1'2345'6000);
    h.write_address(VIRTIO_MMIO_QUEUE_AVAIL_LOW, 0x2'0000'0002);
    h.write_address(VIRTIO_MMIO_QUEUE_USED_LOW, 0x3'0000'0004);
    const auto& core = h.transport.core();
    CHECK(core.queue_select() == 1);
    CHECK(core.queue_size() == 4);
    CHECK(core.queue_address(virtio::QueueAddress::Desc) == 0x1'2345'6000);
    CHECK(core.queue_address(virtio::QueueAddress::Driver) == 0x2'0000'0002);
    CHECK(core.queue_address(virtio::QueueAddress::Device) == 0x3'0000'0004);
    h.write32(VIRTIO_MMIO_QUEUE_NUM, 0x10010);  // does not fit 16 bits: becomes 0, never 0x10
    CHECK(core.queue_size() == 0);
}

TEST_CASE("Device configuration space takes 8, 16, 32 and 64-bit accesses", "[virtio][mmio]") {
    Harness h;
    std::array<uint8_t, 1> b{};
    h.transport.read(VIRTIO_MMIO_CONFIG + 2, b);
    CHECK(b[0] == 3);
    std::array<uint8_t, 2> w{};
    h.transport.read(VIRTIO_MMIO_CONFIG + 2, w);
    CHECK(w == std::array<uint8_t, 2>{3, 4});
    CHECK(h.read32(VIRTIO_MMIO_CONFIG + 4) == 0x08070605);
    std::array<uint8_t, 8> q{};
    h.transport.read(VIRTIO_MMIO_CONFIG, q);
    CHECK(q == std::array<uint8_t, 8>{1, 2, 3, 4, 5, 6, 7, 8});
    CHECK(h.read32(VIRTIO_MMIO_CONFIG + 0x100) == 0);  // past the device's config: zeros

    const std::array<uint8_t, 2> value{0xaa, 0xbb};
    h.transport.write(VIRTIO_MMIO_CONFIG + 6, value);
    CHECK(h.device->config[6] == 0xaa);
    CHECK(h.device->config[7] == 0xbb);
    const std::array<uint8_t, 8> wide{9, 9, 9, 9, 9, 9, 9, 9};
    h.transport.write(VIRTIO_MMIO_CONFIG, wide);
    CHECK(h.device->config[0] == 9);
    CHECK(h.device->config[7] == 9);
    CHECK(h.counter("bad_accesses") == 0);
}

TEST_CASE("Misaligned or odd-sized config space accesses read 0 and are ignored", "[virtio][mmio]") {
    Harness h;
    std::array<uint8_t, 2> w{0xff, 0xff};
    h.transport.read(VIRTIO_MMIO_CONFIG + 1, w);
    CHECK(w == std::array<uint8_t, 2>{0, 0});
    std::array<uint8_t, 3> odd{0xff, 0xff, 0xff};
    h.transport.read(VIRTIO_MMIO_CONFIG, odd);
    CHECK(odd == std::array<uint8_t, 3>{0, 0, 0});
    const std::array<uint8_t, 4> value{1, 1, 1, 1};
    h.transport.write(VIRTIO_MMIO_CONFIG + 2, value);
    std::array<uint8_t, 8> past{};
    h.transport.read(0xffc, past);  // runs off the 4 KiB window
    CHECK(h.device->config_writes == 0);
    CHECK(h.counter("bad_accesses") == 4);
}

TEST_CASE("A configuration change bumps ConfigGeneration and raises interrupt bit 1", "[virtio][mmio]") {
    Harness h;
    const uint32_t before = h.read32(VIRTIO_MMIO_CONFIG_GENERATION);
    h.transport.signal_config_change();
    CHECK(h.read32(VIRTIO_MMIO_CONFIG_GENERATION) == before + 1);
    CHECK(h.read32(VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_CONFIG);
    CHECK(h.irq->count == 1);
}

TEST_CASE("Notifications before the driver acks make one edge, after the ack, a new one", "[virtio][mmio]") {
    Harness h;
    h.transport.signal_used_queue(0);
    h.transport.signal_used_queue(1);  // bit 0 still set: the handler to come sees both
    CHECK(h.irq->count == 1);
    CHECK(h.counter("interrupts") == 1);
    CHECK(h.counter("interrupts_merged") == 1);
    h.transport.signal_config_change();  // another bit: its own edge
    CHECK(h.irq->count == 2);
    h.write32(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
    h.transport.signal_used_queue(0);
    CHECK(h.irq->count == 3);
    CHECK(h.read32(VIRTIO_MMIO_INTERRUPT_STATUS) == (VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG));
    CHECK(h.counter("interrupts_merged") == 1);
}

TEST_CASE("As a level, the line is raised again at each EOI until the driver has acked every cause",
          "[virtio][mmio]") {
    Harness h;
    REQUIRE(h.irq->level);
    h.transport.signal_used_queue(0);
    CHECK(h.irq->count == 1);
    SECTION("an EOI before the ack (an edge handler's order) finds the line still asserted") {
        CHECK(h.irq->end_of_interrupt());
        CHECK(h.irq->count == 2);
    }
    SECTION("the fasteoi order: acked, then EOI, and the line stays low") {
        h.write32(VIRTIO_MMIO_INTERRUPT_ACK, h.read32(VIRTIO_MMIO_INTERRUPT_STATUS));
        CHECK_FALSE(h.irq->end_of_interrupt());
        CHECK(h.irq->count == 1);
    }
    SECTION("a notification between the driver's ack and its EOI is not lost") {
        h.write32(VIRTIO_MMIO_INTERRUPT_ACK, h.read32(VIRTIO_MMIO_INTERRUPT_STATUS));
        h.transport.signal_used_queue(1);  // the handler already read the status
        CHECK(h.irq->end_of_interrupt());  // so the EOI's resample raises the line for it
        h.write32(VIRTIO_MMIO_INTERRUPT_ACK, h.read32(VIRTIO_MMIO_INTERRUPT_STATUS));
        CHECK_FALSE(h.irq->end_of_interrupt());
    }
    SECTION("a device reset drops the level") {
        h.write32(VIRTIO_MMIO_STATUS, 0);
        CHECK_FALSE(h.irq->end_of_interrupt());
    }
}

TEST_CASE("A destroyed transport leaves its line no level source", "[virtio][mmio]") {
    std::shared_ptr<CountingIrq> irq;  // outlives the transport, as a shared line may
    {
        Harness h;
        irq = h.irq;
        REQUIRE(irq->level);
    }
    CHECK_FALSE(irq->level);
}

TEST_CASE("A used-buffer notification raises interrupt bit 0 until the driver acks it", "[virtio][mmio]") {
    Harness h;
    h.transport.signal_used_queue(0);
    h.transport.signal_config_change();
    CHECK(h.irq->count == 2);
    CHECK(h.read32(VIRTIO_MMIO_INTERRUPT_STATUS) == (VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG));
    h.write32(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
    CHECK(h.read32(VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_CONFIG);
    h.write32(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
    CHECK(h.read32(VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
    CHECK(h.counter("interrupts") == 2);
}

TEST_CASE("A QueueNotify write makes that queue's kick fd readable", "[virtio][mmio]") {
    Harness h;
    const auto fds = h.transport.core().kick_fds();
    REQUIRE(fds.size() == 2);
    h.notify(1);
    CHECK_FALSE(fd_readable(fds[0]));
    CHECK(fd_readable(fds[1]));
    h.notify(2);  // no such queue: ignored
    h.notify(0xffffffff);
    CHECK_FALSE(fd_readable(fds[0]));
    CHECK(h.counter("kicks") == 1);
}

TEST_CASE("Register accesses of the wrong width, offset or direction read 0 and are ignored", "[virtio][mmio]") {
    Harness h;
    std::array<uint8_t, 2> narrow{0xff, 0xff};
    h.transport.read(VIRTIO_MMIO_MAGIC_VALUE, narrow);
    CHECK(narrow == std::array<uint8_t, 2>{0, 0});
    std::array<uint8_t, 8> wide{};
    wide.fill(0xff);
    h.transport.read(VIRTIO_MMIO_MAGIC_VALUE, wide);
    CHECK(wide == std::array<uint8_t, 8>{});
    CHECK(h.read32(VIRTIO_MMIO_MAGIC_VALUE + 2) == 0);  // misaligned
    CHECK(h.read32(0x040) == 0);                       // legacy QueuePFN
    CHECK(h.read32(VIRTIO_MMIO_QUEUE_SEL) == 0);       // write-only
    h.write32(VIRTIO_MMIO_MAGIC_VALUE, 0);             // read-only
    CHECK(h.read32(VIRTIO_MMIO_MAGIC_VALUE) == 0x74726976);
    const std::array<uint8_t, 1> byte{1};
    h.transport.write(VIRTIO_MMIO_STATUS, byte);  // 8-bit write to a register
    CHECK(h.status() == 0);
    h.write32(VIRTIO_MMIO_STATUS, 0x101);  // only the low byte is defined
    CHECK(h.status() == 0);
    CHECK(h.counter("bad_accesses") == 8);
}

TEST_CASE("ioevents lists one 4-byte QueueNotify ioeventfd per queue, matching the queue index", "[virtio][mmio]") {
    Harness h;
    const auto specs = h.transport.ioevents();
    REQUIRE(specs.size() == 2);
    for (size_t i = 0; i < specs.size(); ++i) {
        CHECK(specs[i].address == Gpa{0xd0001000 + VIRTIO_MMIO_QUEUE_NOTIFY});
        CHECK(specs[i].length == 4);
        CHECK(specs[i].datamatch == std::optional<uint64_t>{i});
        CHECK(specs[i].fd == h.transport.core().kick_fds()[i]);
    }
}

TEST_CASE("The kernel parameter for a virtio-mmio device is size@base:irq as Linux parses it", "[virtio][mmio]") {
    Harness h;
    CHECK(h.transport.kernel_cmdline_parameter() == "virtio_mmio.device=4K@0xd0001000:5");
    CHECK(virtio::virtio_mmio_cmdline_parameter(Gpa{0x1'0000'0000}, 0x200000, 12) ==
          "virtio_mmio.device=2M@0x100000000:12");
    CHECK(virtio::virtio_mmio_cmdline_parameter(Gpa{0xd0000000}, 0x200, 7) == "virtio_mmio.device=512@0xd0000000:7");
}

TEST_CASE("Counters list the device's counters followed by the transport's", "[virtio][mmio]") {
    Harness h;
    const auto counters = h.transport.counters();
    REQUIRE(counters.size() == 7);
    CHECK(counters[0] == virtio::DeviceCounter{"scripted", 7});
    CHECK(counters[1].first == "kicks");
    CHECK(counters[2].first == "interrupts");
    CHECK(counters[3].first == "resets");
    CHECK(counters[4].first == "needs_reset");
    CHECK(counters[5].first == "bad_accesses");
    CHECK(counters[6].first == "interrupts_merged");
}
