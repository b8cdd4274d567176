// The virtio-pci function as PCI sees it: header values (virtio 1.2 §4.1.2),
// the capability list Linux walks (§4.1.4, virtio_pci_modern_dev.c), the BAR
// and MSI-X capability, and the PCI_CFG window (§4.1.4.9).

#include <linux/pci_regs.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstddef>
#include <memory>

#include "common/error.h"
#include "memory/guest_memory.h"
#include "virtio/pci/virtio_pci_transport.h"
#include "virtio/rng_device.h"
#include "virtio_fakes/fake_event_registry.h"
#include "virtio_pci/virtio_pci_test_support.h"

namespace keel {
namespace {

using test::PciGuest;
using virtio::VirtioPciLayout;
using virtio::VirtioPciTransport;

struct RngFunction {
    GuestMemory memory = GuestMemory::create({{Gpa{0}, 1 << 20}});
    test::FakeEventRegistry events;
    std::shared_ptr<test::RecordingSink> sink = std::make_shared<test::RecordingSink>();
    std::shared_ptr<VirtioPciTransport> transport =
        std::make_shared<VirtioPciTransport>(std::make_shared<virtio::RngDevice>(), memory, events, sink, "virtio-rng");
    PciGuest guest{*transport};
};

TEST_CASE("virtio-pci rng function has the modern virtio IDs and revision 1") {
    RngFunction f;
    CHECK(f.guest.cfg16(PCI_VENDOR_ID) == 0x1af4);
    CHECK(f.guest.cfg16(PCI_DEVICE_ID) == 0x1040 + VIRTIO_ID_RNG);
    CHECK(f.guest.cfg8(PCI_REVISION_ID) == 1);
    CHECK(f.guest.cfg16(PCI_SUBSYSTEM_VENDOR_ID) == 0x1af4);
    CHECK(f.guest.cfg16(PCI_SUBSYSTEM_ID) >= 0x40);
    CHECK((f.guest.cfg32(PCI_CLASS_REVISION) >> 8) == 0x00ff00);
    CHECK(f.guest.cfg8(PCI_HEADER_TYPE) == PCI_HEADER_TYPE_NORMAL);
    CHECK(f.transport->name() == "virtio-rng");
}

TEST_CASE("virtio-pci function has no INTx pin because keel delivers MSI-X only") {
    RngFunction f;
    CHECK(f.guest.cfg8(PCI_INTERRUPT_PIN) == 0);
}

TEST_CASE("virtio-pci class codes follow the device type") {
    CHECK(virtio::virtio_pci_class_code(VIRTIO_ID_BLOCK) == 0x010000);
    CHECK(virtio::virtio_pci_class_code(VIRTIO_ID_NET) == 0x020000);
    CHECK(virtio::virtio_pci_class_code(VIRTIO_ID_CONSOLE) == 0x078000);
    CHECK(virtio::virtio_pci_class_code(VIRTIO_ID_RNG) == 0x00ff00);
    const pci::PciIdentity blk = virtio::virtio_pci_identity(VIRTIO_ID_BLOCK);
    CHECK(blk.device_id == 0x1042);
    CHECK(blk.subsystem_id == 0x1042);
}

TEST_CASE("virtio-pci BAR 0 is one 64-bit non-prefetchable memory BAR sized to a power of two") {
    RngFunction f;
    const auto regions = f.transport->bar_regions();
    REQUIRE(regions.size() == 1);
    CHECK(regions[0].spec.index == 0);
    CHECK(regions[0].spec.kind == pci::BarKind::Memory64);
    CHECK(regions[0].spec.prefetchable == pci::Prefetchable::No);
    CHECK(regions[0].spec.size == f.transport->layout().bar_size);
    CHECK(regions[0].device != nullptr);
    const uint32_t flags = f.guest.cfg32(PCI_BASE_ADDRESS_0) & 0xf;
    CHECK(flags == (PCI_BASE_ADDRESS_SPACE_MEMORY | PCI_BASE_ADDRESS_MEM_TYPE_64));
    // Sizing: all-ones reads back the size mask.
    f.guest.cfg_write(PCI_BASE_ADDRESS_0, 4, 0xffffffff);
    CHECK((f.guest.cfg32(PCI_BASE_ADDRESS_0) & ~0xfu) == static_cast<uint32_t>(~(regions[0].spec.size - 1)));
    for (uint8_t bar = 2; bar < 6; ++bar)
        CHECK(f.guest.cfg32(static_cast<uint16_t>(PCI_BASE_ADDRESS_0 + 4 * bar)) == 0);
}

TEST_CASE("virtio-pci BAR device shares the transport's ownership") {
    GuestMemory memory = GuestMemory::create({{Gpa{0}, 1 << 20}});
    test::FakeEventRegistry events;
    auto transport = std::make_shared<VirtioPciTransport>(std::make_shared<virtio::RngDevice>(), memory, events,
                                                          std::make_shared<test::RecordingSink>(), "virtio-rng");
    auto regions = transport->bar_regions();
    const std::weak_ptr<VirtioPciTransport> weak = transport;
    transport.reset();
    CHECK_FALSE(weak.expired());
    regions.clear();
    CHECK(weak.expired());
}

TEST_CASE("virtio-pci transport not owned by a shared_ptr refuses to hand out its BAR") {
    GuestMemory memory = GuestMemory::create({{Gpa{0}, 1 << 20}});
    test::FakeEventRegistry events;
    VirtioPciTransport transport(std::make_shared<virtio::RngDevice>(), memory, events,
                                 std::make_shared<test::RecordingSink>(), "virtio-rng");
    CHECK_THROWS_AS(transport.bar_regions(), Error);
}

TEST_CASE("virtio-pci transport without a vector sink is a setup error") {
    GuestMemory memory = GuestMemory::create({{Gpa{0}, 1 << 20}});
    test::FakeEventRegistry events;
    CHECK_THROWS_AS(VirtioPciTransport(std::make_shared<virtio::RngDevice>(), memory, events, nullptr, "x"), Error);
}

TEST_CASE("virtio-pci assigned BAR address shows in config space and in the ioeventfds") {
    RngFunction f;
    CHECK(f.transport->ioevents().empty());
    f.transport->bar_assigned(0, 0xe0000000);
    CHECK(f.guest.cfg32(PCI_BASE_ADDRESS_0) == (0xe0000000u | PCI_BASE_ADDRESS_MEM_TYPE_64));
    CHECK(f.guest.cfg32(PCI_BASE_ADDRESS_1) == 0);
    CHECK(f.transport->bar_address() == Gpa{0xe0000000});
    CHECK_THROWS_AS(f.transport->bar_assigned(2, 0xe0100000), Error);

    const auto ioevents = f.transport->ioevents();
    REQUIRE(ioevents.size() == 1);
    CHECK(ioevents[0].address == Gpa{0xe0000000 + VirtioPciLayout::kNotifyOffset});
    CHECK(ioevents[0].length == 2);
    CHECK_FALSE(ioevents[0].datamatch.has_value());
    CHECK(ioevents[0].fd == f.transport->core().kick_fds()[0]);
}

TEST_CASE("virtio-pci capability list holds every virtio structure Linux looks for") {
    RngFunction f;
    const VirtioPciLayout& layout = f.transport->layout();
    struct Expected {
        uint8_t cfg_type;
        uint32_t offset;
        uint32_t length;
    };
    const Expected expected[] = {
        {VIRTIO_PCI_CAP_COMMON_CFG, VirtioPciLayout::kCommonOffset, sizeof(virtio_pci_common_cfg)},
        {VIRTIO_PCI_CAP_NOTIFY_CFG, VirtioPciLayout::kNotifyOffset, layout.notify_length},
        {VIRTIO_PCI_CAP_ISR_CFG, VirtioPciLayout::kIsrOffset, 1},
        {VIRTIO_PCI_CAP_DEVICE_CFG, VirtioPciLayout::kDeviceOffset, 0x1000},
        {VIRTIO_PCI_CAP_PCI_CFG, 0, 0},
    };
    for (const Expected& e : expected) {
        INFO("cfg_type " << int{e.cfg_type});
        const auto cap = f.guest.find_virtio_cap(e.cfg_type);
        REQUIRE(cap.has_value());
        CHECK(cap->bar == 0);
        CHECK(cap->offset == e.offset);
        CHECK(cap->length == e.length);
        // vp_modern_map_capability: 4-aligned (common), inside the BAR.
        CHECK(uint64_t{cap->offset} + cap->length <= layout.bar_size);
    }
    CHECK(f.guest.find_virtio_cap(VIRTIO_PCI_CAP_SHARED_MEMORY_CFG) == std::nullopt);
    CHECK(f.guest.capabilities(PCI_CAP_ID_VNDR).size() == 5);
    // Every structure starts its own page.
    CHECK(VirtioPciLayout::kIsrOffset % 0x1000 == 0);
    CHECK(VirtioPciLayout::kDeviceOffset % 0x1000 == 0);
    CHECK(VirtioPciLayout::kNotifyOffset % 0x1000 == 0);
    CHECK(layout.msix_table_offset % 0x1000 == 0);
    CHECK(layout.msix_pba_offset % 0x1000 == 0);
}

TEST_CASE("virtio-pci capabilities have the UAPI lengths and the notify multiplier is 4") {
    RngFunction f;
    const auto notify = f.guest.find_virtio_cap(VIRTIO_PCI_CAP_NOTIFY_CFG);
    REQUIRE(notify);
    CHECK(f.guest.cfg8(static_cast<uint16_t>(notify->position + VIRTIO_PCI_CAP_LEN)) == sizeof(virtio_pci_notify_cap));
    CHECK(f.guest.cfg32(static_cast<uint16_t>(notify->position + VIRTIO_PCI_NOTIFY_CAP_MULT)) == 4);
    const auto common = f.guest.find_virtio_cap(VIRTIO_PCI_CAP_COMMON_CFG);
    REQUIRE(common);
    CHECK(f.guest.cfg8(static_cast<uint16_t>(common->position + VIRTIO_PCI_CAP_LEN)) == sizeof(virtio_pci_cap));
    const auto window = f.guest.find_virtio_cap(VIRTIO_PCI_CAP_PCI_CFG);
    REQUIRE(window);
    CHECK(f.guest.cfg8(static_cast<uint16_t>(window->position + VIRTIO_PCI_CAP_LEN)) == sizeof(virtio_pci_cfg_cap));
    CHECK(window->position == f.transport->pci_cfg_capability());
}

TEST_CASE("virtio-pci capabilities other than the PCI_CFG window are read-only") {
    RngFunction f;
    const auto common = f.guest.find_virtio_cap(VIRTIO_PCI_CAP_COMMON_CFG);
    REQUIRE(common);
    f.guest.cfg_write(static_cast<uint16_t>(common->position + VIRTIO_PCI_CAP_OFFSET), 4, 0x1234);
    f.guest.cfg_write(static_cast<uint16_t>(common->position + VIRTIO_PCI_CAP_BAR), 1, 3);
    CHECK(f.guest.cfg32(static_cast<uint16_t>(common->position + VIRTIO_PCI_CAP_OFFSET)) == 0);
    CHECK(f.guest.cfg8(static_cast<uint16_t>(common->position + VIRTIO_PCI_CAP_BAR)) == 0);
}

TEST_CASE("virtio-pci MSI-X capability has a vector per queue plus one, table and PBA in BAR 0") {
    RngFunction f;
    const auto msix = f.guest.capabilities(PCI_CAP_ID_MSIX);
    REQUIRE(msix.size() == 1);
    const uint16_t control = f.guest.cfg16(static_cast<uint16_t>(msix[0] + PCI_MSIX_FLAGS));
    CHECK((control & PCI_MSIX_FLAGS_QSIZE) + 1 == 2);
    CHECK((control & PCI_MSIX_FLAGS_ENABLE) == 0);
    const uint32_t table = f.guest.cfg32(static_cast<uint16_t>(msix[0] + PCI_MSIX_TABLE));
    const uint32_t pba = f.guest.cfg32(static_cast<uint16_t>(msix[0] + PCI_MSIX_PBA));
    CHECK((table & PCI_MSIX_TABLE_BIR) == 0);
    CHECK((table & PCI_MSIX_TABLE_OFFSET) == f.transport->layout().msix_table_offset);
    CHECK((pba & PCI_MSIX_PBA_BIR) == 0);
    CHECK((pba & PCI_MSIX_PBA_OFFSET) == f.transport->layout().msix_pba_offset);
    CHECK(VirtioPciTransport::msix_vector_count(virtio::RngDevice()) == 2);
}

TEST_CASE("virtio-pci layout grows the BAR with the queue count") {
    const VirtioPciLayout small = VirtioPciLayout::for_queues(1);
    CHECK(small.bar_size == 0x8000);
    CHECK(VirtioPciLayout::for_queues(2047).msix_vectors == 2048);
    const VirtioPciLayout big = VirtioPciLayout::for_queues(1500);
    CHECK(big.notify_length == 6000);
    CHECK(big.msix_table_offset >= VirtioPciLayout::kNotifyOffset + big.notify_length);
    CHECK(big.msix_pba_offset >= big.msix_table_offset + 1501u * 16u);
    CHECK(big.bar_size >= big.msix_pba_offset + 0x1000u);
    CHECK_THROWS_AS(VirtioPciLayout::for_queues(0), Error);
    CHECK_THROWS_AS(VirtioPciLayout::for_queues(2048), Error);
}

// --- PCI_CFG window (§4.1.4.9) ---

struct Window {
    RngFunction f;
    uint16_t cap = f.transport->pci_cfg_capability();
    void select(uint8_t bar, uint32_t offset, uint32_t length) {
        f.guest.cfg_write(static_cast<uint16_t>(cap + VIRTIO_PCI_CAP_BAR), 1, bar);
        f.guest.cfg_write(static_cast<uint16_t>(cap + VIRTIO_PCI_CAP_OFFSET), 4, offset);
        f.guest.cfg_write(static_cast<uint16_t>(cap + VIRTIO_PCI_CAP_LENGTH), 4, length);
    }
    uint32_t read_data() {
        return f.guest.cfg32(static_cast<uint16_t>(cap + offsetof(virtio_pci_cfg_cap, pci_cfg_data)));
    }
    void write_data(uint32_t value, size_t size = 4) {
        f.guest.cfg_write(static_cast<uint16_t>(cap + offsetof(virtio_pci_cfg_cap, pci_cfg_data)), size, value);
    }
};

TEST_CASE("virtio-pci PCI_CFG window reads common configuration fields") {
    Window w;
    w.select(0, VIRTIO_PCI_COMMON_NUMQ, 2);
    CHECK(w.read_data() == 1);
    w.select(0, VIRTIO_PCI_COMMON_Q_SIZE, 2);
    CHECK(w.read_data() == virtio::RngDevice::kQueueSize);
    w.select(0, VIRTIO_PCI_COMMON_DF, 4);
    CHECK(w.read_data() == static_cast<uint32_t>(virtio::RngDevice().device_features()));
}

TEST_CASE("virtio-pci PCI_CFG window writes reach the BAR") {
    Window w;
    w.select(0, VIRTIO_PCI_COMMON_STATUS, 1);
    w.write_data(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    CHECK(w.f.guest.status() == VIRTIO_CONFIG_S_ACKNOWLEDGE);
    w.select(0, VIRTIO_PCI_COMMON_DFSELECT, 4);
    w.write_data(1);
    CHECK(w.f.guest.common(VIRTIO_PCI_COMMON_DFSELECT, 4) == 1);
    // Notify through the window: the kick fd becomes readable.
    w.select(0, VirtioPciLayout::kNotifyOffset, 2);
    w.write_data(0, 2);
    uint64_t count = 0;
    CHECK(::read(w.f.transport->core().kick_fds()[0], &count, sizeof count) == sizeof count);
    CHECK(count == 1);
}

TEST_CASE("virtio-pci PCI_CFG window read of the ISR clears it") {
    Window w;
    w.f.transport->signal_config_change();
    w.select(0, VirtioPciLayout::kIsrOffset, 1);
    CHECK(w.read_data() == VIRTIO_PCI_ISR_CONFIG);
    CHECK(w.f.transport->isr() == 0);
}

TEST_CASE("virtio-pci PCI_CFG window with a hostile selection reads zeros and writes nothing") {
    Window w;
    const auto bad_before = [&] {
        for (const auto& [name, value] : w.f.transport->counters()) {
            if (name == "bad_accesses") return value;
        }
        return uint64_t{0};
    };
    const uint64_t before = bad_before();
    w.select(1, VIRTIO_PCI_COMMON_NUMQ, 2);  // another BAR
    CHECK(w.read_data() == 0);
    w.select(0, VIRTIO_PCI_COMMON_NUMQ, 3);  // width 3
    CHECK(w.read_data() == 0);
    w.select(0, VIRTIO_PCI_COMMON_Q_SIZE + 1, 2);  // misaligned
    CHECK(w.read_data() == 0);
    w.select(0, 0xfffffffc, 4);  // past the BAR, and offset + length wraps 32 bits
    CHECK(w.read_data() == 0);
    w.select(0, VIRTIO_PCI_COMMON_STATUS, 0);  // zero length
    w.write_data(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    CHECK(w.f.guest.status() == 0);
    CHECK(bad_before() >= before + 5);
}

}  // namespace
}  // namespace keel
