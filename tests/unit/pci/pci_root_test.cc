#include "pci/pci_root.h"

#include <linux/pci_regs.h>

#include <catch2/catch.hpp>
#include <memory>
#include <vector>

#include "arch/x86_64/layout.h"
#include "bus/bus.h"
#include "common/error.h"
#include "pci_test_support.h"

using namespace keel;
using namespace keel::pci;
using keel::pci::test::read_n;
using keel::pci::test::TestFunction;
using keel::pci::test::write_n;

namespace {

constexpr uint64_t kAllOnes32 = 0xffff'ffff;

uint32_t config_address(uint32_t bus, uint32_t device, uint32_t function, uint32_t reg) {
    return 0x8000'0000u | bus << 16 | device << 11 | function << 8 | reg;
}

uint64_t ecam_offset(uint64_t device, uint64_t function, uint64_t reg) {
    return device << 15 | function << 12 | reg;
}

struct Fixture {
    Fixture() : root(std::make_shared<PciRoot>()), ports(root), ecam(root) {}

    // CF8 then a data access at 0xCFC + (reg & 3), as Linux's pci_conf1_read does.
    uint64_t conf1_read(uint32_t device, uint32_t reg, size_t size, uint32_t bus = 0, uint32_t function = 0) {
        write_n(ports, 0, config_address(bus, device, function, reg & 0xfc), 4);
        return read_n(ports, 4 + (reg & 3), size);
    }
    void conf1_write(uint32_t device, uint32_t reg, uint64_t value, size_t size) {
        write_n(ports, 0, config_address(0, device, 0, reg & 0xfc), 4);
        write_n(ports, 4 + (reg & 3), value, size);
    }

    std::shared_ptr<PciRoot> root;
    PciConfigIoPort ports;
    PciEcam ecam;
};

}  // namespace

TEST_CASE("the host bridge answers at 00:00.0 with class 0600", "[pci][root]") {
    Fixture f;
    CHECK(f.conf1_read(0, PCI_VENDOR_ID, 4) ==
          (uint32_t{kHostBridgeIdentity.device_id} << 16 | kHostBridgeIdentity.vendor_id));
    CHECK(f.conf1_read(0, PCI_CLASS_REVISION, 4) >> 8 == 0x060000);
    CHECK(f.conf1_read(0, PCI_HEADER_TYPE, 1) == 0);  // single function: Linux skips functions 1-7
}

TEST_CASE("CONFIG_ADDRESS keeps enable, bus, device, function and register bits only", "[pci][root][cf8]") {
    Fixture f;
    write_n(f.ports, 0, 0xffff'ffff, 4);
    CHECK(read_n(f.ports, 0, 4) == 0x80ff'fffc);
    // Linux's type-1 probe (arch/x86/pci/direct.c): write 0x80000000, read it back.
    write_n(f.ports, 0, 0x8000'0000, 4);
    CHECK(read_n(f.ports, 0, 4) == 0x8000'0000);
    // Byte and word accesses to 0xCF8-0xCFB are not CONFIG_ADDRESS.
    write_n(f.ports, 3, 0x01, 1);
    write_n(f.ports, 0, 0x1234, 2);
    CHECK(read_n(f.ports, 0, 4) == 0x8000'0000);
    CHECK(read_n(f.ports, 3, 1) == 0xff);
    CHECK(read_n(f.ports, 0, 2) == 0xffff);
}

TEST_CASE("CONFIG_DATA serves bytes and words at 0xCFC + n", "[pci][root][cf8]") {
    Fixture f;
    const uint64_t ids = f.conf1_read(0, PCI_VENDOR_ID, 4);
    CHECK(f.conf1_read(0, 0, 1) == (ids & 0xff));
    CHECK(f.conf1_read(0, 1, 1) == ((ids >> 8) & 0xff));
    CHECK(f.conf1_read(0, 2, 2) == ids >> 16);
    CHECK(f.conf1_read(0, 3, 1) == ids >> 24);
    // A word at 0xCFD would be a misaligned register access: all-ones.
    write_n(f.ports, 0, config_address(0, 0, 0, 0), 4);
    CHECK(read_n(f.ports, 5, 2) == 0xffff);
    CHECK(read_n(f.ports, 6, 4) == kAllOnes32);  // runs past 0xCFF
}

TEST_CASE("with the enable bit clear data reads are all-ones and writes are dropped", "[pci][root][cf8]") {
    Fixture f;
    auto function = std::make_shared<TestFunction>(std::vector<BarSpec>{});
    f.root->add_device_at(3, function);
    write_n(f.ports, 0, config_address(0, 3, 0, PCI_COMMAND) & ~0x8000'0000u, 4);
    CHECK(read_n(f.ports, 4, 4) == kAllOnes32);
    write_n(f.ports, 4, PCI_COMMAND_MEMORY, 2);
    CHECK(function->config().command() == 0);
}

TEST_CASE("absent buses, devices and functions read all-ones and ignore writes", "[pci][root]") {
    Fixture f;
    CHECK(f.conf1_read(5, PCI_VENDOR_ID, 4) == kAllOnes32);
    CHECK(f.conf1_read(0, PCI_VENDOR_ID, 2, /*bus=*/1) == 0xffff);
    CHECK(f.conf1_read(0, PCI_VENDOR_ID, 4, 0, /*function=*/1) == kAllOnes32);
    f.conf1_write(5, PCI_COMMAND, 0xffff, 2);
    CHECK(read_n(f.ecam, ecam_offset(31, 7, 0xffc), 4) == kAllOnes32);
}

TEST_CASE("config writes through the ports reach the function", "[pci][root][cf8]") {
    Fixture f;
    auto function = std::make_shared<TestFunction>(std::vector<BarSpec>{});
    CHECK(f.root->add_device(function) == 1);
    f.conf1_write(1, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
    CHECK(function->config().command() == (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER));
    CHECK(f.conf1_read(1, PCI_DEVICE_ID, 2) == 0x1042);
}

TEST_CASE("ECAM decodes device, function and register from the offset", "[pci][root][ecam]") {
    Fixture f;
    auto function = std::make_shared<TestFunction>(std::vector<BarSpec>{});
    f.root->add_device_at(9, function);
    CHECK(PciEcam::kSize == x86::kPciEcamUsedSize);
    CHECK(read_n(f.ecam, ecam_offset(9, 0, PCI_VENDOR_ID), 4) == 0x1042'1af4);
    CHECK(read_n(f.ecam, ecam_offset(9, 0, PCI_DEVICE_ID), 2) == 0x1042);
    CHECK(read_n(f.ecam, ecam_offset(9, 0, PCI_CLASS_DEVICE + 1), 1) == 0x01);
    write_n(f.ecam, ecam_offset(9, 0, PCI_INTERRUPT_LINE), 0x0a, 1);
    CHECK(f.conf1_read(9, PCI_INTERRUPT_LINE, 1) == 0x0a);
    // Extended config space of a conventional function: zeros, not all-ones.
    CHECK(read_n(f.ecam, ecam_offset(9, 0, 0x100), 4) == 0);
    CHECK(read_n(f.ecam, ecam_offset(9, 1, PCI_VENDOR_ID), 4) == kAllOnes32);
    // Misaligned, too wide, or outside bus 0's megabyte.
    CHECK(read_n(f.ecam, ecam_offset(9, 0, 1), 2) == 0xffff);
    CHECK(read_n(f.ecam, ecam_offset(9, 0, 0), 8) == UINT64_MAX);
    CHECK(read_n(f.ecam, PciEcam::kSize + ecam_offset(9, 0, 0), 4) == kAllOnes32);
    write_n(f.ecam, PciEcam::kSize, 0, 4);
}

TEST_CASE("BARs are assigned largest first, naturally aligned, inside the window", "[pci][root][bar]") {
    Fixture f;
    auto a = std::make_shared<TestFunction>(
        std::vector<BarSpec>{{.index = 0, .size = 0x1000}, {.index = 2, .size = 0x10'0000, .kind = BarKind::Memory64}},
        "a");
    auto b = std::make_shared<TestFunction>(
        std::vector<BarSpec>{{.index = 1, .size = 0x4000}, {.index = 4, .size = 16}}, "b");
    f.root->add_device(a);
    f.root->add_device(b);
    Bus mmio(BusKind::Mmio);
    f.root->assign_bars(mmio, x86::kPciMmioWindowStart.value, x86::kPciMmioWindowSize);
    const uint64_t start = x86::kPciMmioWindowStart.value;
    CHECK(a->config().bar_address(2) == start);
    CHECK(b->config().bar_address(1) == start + 0x10'0000);
    CHECK(a->config().bar_address(0) == start + 0x10'4000);
    CHECK(b->config().bar_address(4) == start + 0x10'5000);  // a 16-byte BAR still gets its own page
    for (const AssignedBar& bar : f.root->assigned_bars()) {
        CHECK(bar.address % bar.size == 0);
        CHECK(bar.address >= start);
        CHECK(bar.address + bar.size <= start + x86::kPciMmioWindowSize);
    }
    CHECK(f.conf1_read(1, PCI_BASE_ADDRESS_2, 4) == (start | PCI_BASE_ADDRESS_MEM_TYPE_64));
    CHECK(f.conf1_read(1, PCI_BASE_ADDRESS_3, 4) == 0);
    // Each BAR is on the MMIO bus, named, and sees BAR-relative offsets.
    REQUIRE(mmio.entries().size() == 4);
    const Bus::Entry* entry = mmio.find(start + 0x10'0000 + 0x10, 4);
    REQUIRE(entry != nullptr);
    CHECK(entry->name == "b BAR1");
    std::vector<uint8_t> data(4);
    CHECK(mmio.read(start + 0x10'0000 + 0x10, data));
    CHECK(b->probe(0).last_read == 0x10);
}

TEST_CASE("BARs stay where they were assigned when the guest writes another address", "[pci][root][bar]") {
    Fixture f;
    auto function = std::make_shared<TestFunction>(std::vector<BarSpec>{{.index = 0, .size = 0x1000}});
    f.root->add_device(function);
    Bus mmio(BusKind::Mmio);
    f.root->assign_bars(mmio, x86::kPciMmioWindowStart.value, x86::kPciMmioWindowSize);
    const uint64_t assigned = function->config().bar_address(0);
    // Sizing, then a move: the register reads back what was written...
    f.conf1_write(1, PCI_BASE_ADDRESS_0, kAllOnes32, 4);
    CHECK(f.conf1_read(1, PCI_BASE_ADDRESS_0, 4) == 0xffff'f000);
    f.conf1_write(1, PCI_BASE_ADDRESS_0, 0xc800'0000, 4);
    CHECK(f.conf1_read(1, PCI_BASE_ADDRESS_0, 4) == 0xc800'0000);
    // ...but the bus still decodes the assigned address only.
    CHECK(mmio.find(assigned, 4) != nullptr);
    CHECK(mmio.find(0xc800'0000, 4) == nullptr);
}

TEST_CASE("a window too small for the BARs is a setup error", "[pci][root][bar]") {
    Fixture f;
    f.root->add_device(std::make_shared<TestFunction>(std::vector<BarSpec>{{.index = 0, .size = 0x2000}}));
    f.root->add_device(std::make_shared<TestFunction>(std::vector<BarSpec>{{.index = 0, .size = 0x2000}}));
    Bus mmio(BusKind::Mmio);
    CHECK_THROWS_WITH(f.root->assign_bars(mmio, 0xc100'0000, 0x3000), Catch::Contains("too small"));
}

TEST_CASE("slots are handed out from 1 and misuse is a setup error", "[pci][root]") {
    Fixture f;
    auto make = [] { return std::make_shared<TestFunction>(std::vector<BarSpec>{}); };
    CHECK_THROWS_AS(f.root->add_device_at(0, make()), Error);  // the host bridge
    CHECK_THROWS_AS(f.root->add_device_at(32, make()), Error);
    CHECK_THROWS_AS(f.root->add_device(nullptr), Error);
    f.root->add_device_at(2, make());
    CHECK(f.root->add_device(make()) == 1);
    CHECK(f.root->add_device(make()) == 3);
    for (int i = 4; i < 32; ++i) f.root->add_device(make());
    CHECK_THROWS_WITH(f.root->add_device(make()), Catch::Contains("full"));
    Bus mmio(BusKind::Mmio);
    f.root->assign_bars(mmio, 0xc100'0000, 0x1000);
    CHECK_THROWS_AS(f.root->assign_bars(mmio, 0xc100'0000, 0x1000), Error);
    CHECK(f.root->device(31) != nullptr);
    CHECK(f.root->device(32) == nullptr);
}
