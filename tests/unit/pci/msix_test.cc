#include "pci/msix.h"

#include <linux/pci_regs.h>

#include <catch2/catch.hpp>
#include <memory>
#include <thread>
#include <vector>

#include "common/error.h"
#include "pci/pci_config_space.h"
#include "pci_test_support.h"

using namespace keel;
using namespace keel::pci;
using keel::pci::test::RecordingSink;
using Kind = RecordingSink::Call::Kind;

namespace {

constexpr MsixLayout kLayout{.vector_count = 3, .table_bar = 1, .table_offset = 0, .pba_bar = 1, .pba_offset = 0x800};

struct Fixture {
    Fixture() : sink(std::make_shared<RecordingSink>()), msix(kLayout, sink) { cap = msix.add_to(config); }

    // The guest writes message control, then the device tells MSI-X.
    void write_control(uint16_t value) {
        config.write(static_cast<uint16_t>(cap + PCI_MSIX_FLAGS), test::le(value, 2));
        msix.config_written(config);
    }
    void write_entry(uint16_t vector, uint64_t address, uint32_t data, uint32_t control) {
        const uint64_t base = uint64_t{vector} * PCI_MSIX_ENTRY_SIZE;
        msix.table_write(base + PCI_MSIX_ENTRY_LOWER_ADDR, test::le(address, 8));  // qword access
        msix.table_write(base + PCI_MSIX_ENTRY_DATA, test::le(data, 4));
        msix.table_write(base + PCI_MSIX_ENTRY_VECTOR_CTRL, test::le(control, 4));
    }
    void set_masked(uint16_t vector, bool masked) {
        msix.table_write(uint64_t{vector} * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL,
                         test::le(masked ? 1 : 0, 4));
    }
    uint64_t table(uint64_t offset, size_t size) {
        std::vector<uint8_t> bytes(size);
        msix.table_read(offset, bytes);
        return test::from_le(bytes);
    }
    uint64_t pba() {
        std::vector<uint8_t> bytes(8);
        msix.pba_read(0, bytes);
        return test::from_le(bytes);
    }

    PciConfigSpace config{PciIdentity{.vendor_id = 0x1af4, .device_id = 0x1042}};
    std::shared_ptr<RecordingSink> sink;
    MsixCapability msix;
    uint8_t cap = 0;
};

}  // namespace

TEST_CASE("the MSI-X capability describes the table size, table and PBA (PCI 3.0 6.8.2)", "[pci][msix]") {
    Fixture f;
    CHECK(f.config.read8(f.cap + PCI_CAP_LIST_ID) == PCI_CAP_ID_MSIX);
    CHECK(f.config.read16(f.cap + PCI_MSIX_FLAGS) == 2);  // N - 1
    CHECK(f.config.read32(f.cap + PCI_MSIX_TABLE) == (0 | 1u));
    CHECK(f.config.read32(f.cap + PCI_MSIX_PBA) == (0x800 | 1u));
    CHECK(f.msix.table_size() == 48);
    CHECK(f.msix.pba_size() == 8);
    CHECK(MsixCapability::pba_size(64) == 8);
    CHECK(MsixCapability::pba_size(65) == 16);
    // Only enable and function mask are writable.
    f.config.write(static_cast<uint16_t>(f.cap), test::le(0xffff'ffff, 4));
    CHECK(f.config.read16(f.cap + PCI_MSIX_FLAGS) == (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL | 2));
    f.config.write(static_cast<uint16_t>(f.cap + PCI_MSIX_TABLE), test::le(0xffff'ffff, 4));
    CHECK(f.config.read32(f.cap + PCI_MSIX_TABLE) == 1);
}

TEST_CASE("table entries start masked with zero address and data", "[pci][msix]") {
    Fixture f;
    for (uint16_t v = 0; v < 3; ++v) {
        const uint64_t base = uint64_t{v} * 16;
        CHECK(f.table(base + 0, 8) == 0);
        CHECK(f.table(base + 8, 4) == 0);
        CHECK(f.table(base + 12, 4) == PCI_MSIX_ENTRY_CTRL_MASKBIT);
        CHECK(f.msix.vector_masked(v));
    }
    CHECK_FALSE(f.msix.enabled());
}

TEST_CASE("reserved bits of table entries read as zero", "[pci][msix]") {
    Fixture f;
    f.msix.table_write(0, test::le(0xffff'ffff, 4));
    f.msix.table_write(12, test::le(0xffff'ffff, 4));
    CHECK(f.table(0, 4) == 0xffff'fffc);  // address bits 1:0
    CHECK(f.table(12, 4) == 1);           // vector control bits 31:1
    f.msix.table_write(4, test::le(0x1234'5678, 4));
    f.msix.table_write(8, test::le(0x0000'4041, 4));
    CHECK(f.table(0, 8) == 0x1234'5678'ffff'fffcull);
    CHECK(f.table(8, 2) == 0x4041);  // sub-dword reads are served too
}

TEST_CASE("a trigger while MSI-X is disabled is reported and not latched", "[pci][msix]") {
    Fixture f;
    f.write_entry(0, 0xfee0'0000, 0x41, 0);
    CHECK(f.msix.trigger(0) == MsixTriggerResult::Disabled);
    CHECK_FALSE(f.msix.pending(0));
    CHECK(f.sink->calls.empty());
}

TEST_CASE("an unmasked vector is configured when it becomes deliverable, then triggered", "[pci][msix]") {
    Fixture f;
    f.write_entry(1, 0xfee0'1000, 0x4022, 0);
    CHECK(f.sink->calls.empty());  // MSI-X still off
    f.write_control(PCI_MSIX_FLAGS_ENABLE);
    REQUIRE(f.sink->calls.size() == 1);
    CHECK(f.sink->calls[0].kind == Kind::Configure);
    CHECK(f.sink->calls[0].vector == 1);
    CHECK(f.sink->calls[0].message == MsiMessage{0xfee0'1000, 0x4022});
    CHECK(f.msix.trigger(1) == MsixTriggerResult::Delivered);
    CHECK(f.sink->triggers(1) == 1);
    CHECK(f.msix.trigger(7) == MsixTriggerResult::NoSuchVector);
}

TEST_CASE("a masked vector latches its pending bit and fires once on unmask", "[pci][msix]") {
    Fixture f;
    f.write_control(PCI_MSIX_FLAGS_ENABLE);
    f.write_entry(2, 0xfee0'0000, 0x51, PCI_MSIX_ENTRY_CTRL_MASKBIT);
    CHECK(f.msix.trigger(2) == MsixTriggerResult::Pending);
    CHECK(f.msix.trigger(2) == MsixTriggerResult::Pending);
    CHECK(f.msix.pending(2));
    CHECK(f.pba() == 0b100);
    CHECK(f.sink->calls.empty());
    f.set_masked(2, false);
    REQUIRE(f.sink->calls.size() == 2);
    CHECK(f.sink->calls[0].kind == Kind::Configure);  // the message before the interrupt
    CHECK(f.sink->calls[1].kind == Kind::Trigger);
    CHECK(f.sink->calls[1].vector == 2);
    CHECK_FALSE(f.msix.pending(2));
    CHECK(f.pba() == 0);
}

TEST_CASE("the function mask holds every vector pending until it is cleared", "[pci][msix]") {
    Fixture f;
    f.write_entry(0, 0xfee0'0000, 0x30, 0);
    f.write_entry(1, 0xfee0'0000, 0x31, 0);
    // Linux's msix_capability_init: enable with the function masked first.
    f.write_control(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    CHECK(f.msix.function_masked());
    CHECK(f.msix.trigger(0) == MsixTriggerResult::Pending);
    CHECK(f.msix.trigger(1) == MsixTriggerResult::Pending);
    CHECK(f.pba() == 0b11);
    CHECK(f.sink->calls.empty());
    f.write_control(PCI_MSIX_FLAGS_ENABLE);
    CHECK(f.sink->triggers(0) == 1);
    CHECK(f.sink->triggers(1) == 1);
    CHECK(f.sink->configures() == 2);
    CHECK(f.pba() == 0);
}

TEST_CASE("a message change reconfigures the sink, an identical rewrite does not", "[pci][msix]") {
    Fixture f;
    f.write_control(PCI_MSIX_FLAGS_ENABLE);
    f.write_entry(0, 0xfee0'0000, 0x30, 0);
    CHECK(f.sink->configures() == 1);
    // Linux masks the entry, rewrites address and data, unmasks (§6.8.2.9).
    f.set_masked(0, true);
    f.write_entry(0, 0xfee0'2000, 0x31, PCI_MSIX_ENTRY_CTRL_MASKBIT);
    CHECK(f.sink->configures() == 1);
    f.set_masked(0, false);
    REQUIRE(f.sink->configures() == 2);
    CHECK(f.sink->calls.back().message == MsiMessage{0xfee0'2000, 0x31});
    f.set_masked(0, true);
    f.set_masked(0, false);
    CHECK(f.sink->configures() == 2);
}

TEST_CASE("disabling MSI-X stops delivery without dropping the table", "[pci][msix]") {
    Fixture f;
    f.write_control(PCI_MSIX_FLAGS_ENABLE);
    f.write_entry(0, 0xfee0'0000, 0x30, 0);
    f.write_control(0);
    CHECK(f.msix.trigger(0) == MsixTriggerResult::Disabled);
    CHECK(f.table(8, 4) == 0x30);
    f.write_control(PCI_MSIX_FLAGS_ENABLE);
    CHECK(f.msix.trigger(0) == MsixTriggerResult::Delivered);
}

TEST_CASE("the PBA is read-only and accesses past the table read zeros", "[pci][msix]") {
    Fixture f;
    f.write_control(PCI_MSIX_FLAGS_ENABLE);
    CHECK(f.msix.trigger(0) == MsixTriggerResult::Pending);
    f.msix.pba_write(0, test::le(0, 8));
    CHECK(f.pba() == 1);
    f.msix.table_write(48, test::le(0xffff'ffff, 4));
    CHECK(f.table(48, 4) == 0);
    CHECK(f.table(44, 8) == PCI_MSIX_ENTRY_CTRL_MASKBIT);     // straddles the end
    f.msix.table_write(UINT64_MAX - 1, test::le(0xffff, 4));  // wraps: ignored
    std::vector<uint8_t> far(8);
    f.msix.pba_read(UINT64_MAX - 3, far);
    CHECK(test::from_le(far) == 0);
}

TEST_CASE("BAR dispatch finds the table and the PBA and nothing else", "[pci][msix]") {
    Fixture f;
    std::vector<uint8_t> data(4);
    CHECK(f.msix.bar_read(1, 12, data));
    CHECK(test::from_le(data) == 1);
    CHECK(f.msix.bar_read(1, 0x800, data));
    CHECK_FALSE(f.msix.bar_read(1, 0x400, data));
    CHECK_FALSE(f.msix.bar_read(0, 0, data));
    CHECK(f.msix.bar_write(1, 8, test::le(0x99, 4)));
    CHECK(f.table(8, 4) == 0x99);
    MsixBarDevice device(f.msix, 1);
    device.read(0x400, data);
    CHECK(test::from_le(data) == 0);
    device.read(8, data);
    CHECK(test::from_le(data) == 0x99);
    device.write(0x808, test::le(1, 4));  // past the PBA: ignored
}

TEST_CASE("MSI-X layouts that cannot be described are refused", "[pci][msix]") {
    auto sink = std::make_shared<RecordingSink>();
    auto make = [&](MsixLayout layout) { MsixCapability msix(layout, sink); };
    CHECK_THROWS_AS(make({.vector_count = 0}), Error);
    CHECK_THROWS_AS(make({.vector_count = 2049}), Error);
    CHECK_THROWS_AS(make({.vector_count = 1, .table_bar = 6}), Error);
    CHECK_THROWS_AS(make({.vector_count = 1, .table_offset = 4, .pba_offset = 0x100}), Error);
    CHECK_THROWS_AS(make({.vector_count = 4, .table_offset = 0, .pba_offset = 0x38}), Error);  // overlap
    CHECK_NOTHROW(make({.vector_count = 4, .table_offset = 0, .pba_bar = 2, .pba_offset = 0}));
    CHECK_THROWS_AS(MsixCapability(kLayout, nullptr), Error);
    Fixture f;
    CHECK_THROWS_AS(f.msix.add_to(f.config), Error);
}

TEST_CASE("triggers racing with mask changes leave nothing pending once unmasked", "[pci][msix]") {
    Fixture f;
    f.write_control(PCI_MSIX_FLAGS_ENABLE);
    f.write_entry(0, 0xfee0'0000, 0x30, 0);
    std::thread event_loop([&] {
        for (int i = 0; i < 2000; ++i) (void)f.msix.trigger(0);
    });
    for (int i = 0; i < 2000; ++i) f.set_masked(0, (i % 2) == 0);
    event_loop.join();
    f.set_masked(0, false);
    CHECK_FALSE(f.msix.pending(0));
    CHECK(f.sink->triggers(0) >= 1);
}
