#include <linux/pci_regs.h>

#include <array>
#include <catch2/catch.hpp>
#include <vector>

#include "common/error.h"
#include "pci/pci_config_space.h"
#include "pci_test_support.h"

using namespace keel;
using namespace keel::pci;

namespace {

constexpr PciIdentity kIdentity{.vendor_id = 0x1af4,
                                .device_id = 0x1041,
                                .revision_id = 0x01,
                                .class_code = 0x020000,
                                .subsystem_vendor_id = 0x1af4,
                                .subsystem_id = 0x0001};

uint64_t cfg_read(const PciConfigSpace& config, uint16_t offset, size_t size) {
    std::vector<uint8_t> bytes(size);
    config.read(offset, bytes);
    return test::from_le(bytes);
}

void cfg_write(PciConfigSpace& config, uint16_t offset, uint64_t value, size_t size) {
    config.write(offset, test::le(value, size));
}

}  // namespace

TEST_CASE("the type-0 header table covers the 64 bytes of PCI 3.0 Figure 6-1 in order", "[pci][config]") {
    const auto registers = PciConfigSpace::header_registers();
    unsigned next = 0;
    for (const RegisterInfo& reg : registers) {
        INFO(reg.name);
        CHECK(reg.offset == next);
        CHECK((reg.width >= 1 && reg.width <= 4));
        next += reg.width;
    }
    CHECK(next == PCI_STD_HEADER_SIZEOF);
    // A few rows against the spec's register map.
    CHECK(registers[2].offset == PCI_COMMAND);
    CHECK(registers[10].offset == PCI_BASE_ADDRESS_0);
    CHECK(registers[10].access == RegisterAccess::Bar);
    CHECK(registers[15].offset == PCI_BASE_ADDRESS_5);
    CHECK(registers.back().offset == PCI_MAX_LAT);
}

TEST_CASE("identification registers hold the identity and ignore guest writes", "[pci][config]") {
    PciConfigSpace config(kIdentity);
    CHECK(cfg_read(config, PCI_VENDOR_ID, 4) == 0x1041'1af4);
    CHECK(cfg_read(config, PCI_CLASS_REVISION, 4) == 0x0200'0001);
    CHECK(cfg_read(config, PCI_SUBSYSTEM_VENDOR_ID, 4) == 0x0001'1af4);
    CHECK(cfg_read(config, PCI_HEADER_TYPE, 1) == 0);
    for (int reg : {PCI_VENDOR_ID, PCI_CLASS_REVISION, PCI_SUBSYSTEM_VENDOR_ID}) {
        const auto offset = static_cast<uint16_t>(reg);
        const uint64_t before = cfg_read(config, offset, 4);
        cfg_write(config, offset, 0xffff'ffff, 4);
        CHECK(cfg_read(config, offset, 4) == before);
    }
    CHECK(config.describe() == "1af4:1041");
}

TEST_CASE("the command register keeps only memory, master, parity, SERR and INTx-disable", "[pci][config]") {
    PciConfigSpace config(kIdentity);
    CHECK(config.command() == 0);
    cfg_write(config, PCI_COMMAND, 0xffff, 2);
    CHECK(config.command() ==
          (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE));
    cfg_write(config, PCI_COMMAND, 0, 1);  // a byte write clears the low byte only
    CHECK(config.command() == (PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE));
}

TEST_CASE("status error bits are write-1-to-clear and the other bits read-only", "[pci][config]") {
    PciConfigSpace config(kIdentity);
    config.write16(PCI_STATUS, PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_DETECTED_PARITY | PCI_STATUS_INTERRUPT);
    cfg_write(config, PCI_STATUS, PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_INTERRUPT, 2);
    CHECK(config.read16(PCI_STATUS) == (PCI_STATUS_DETECTED_PARITY | PCI_STATUS_INTERRUPT));
    cfg_write(config, PCI_STATUS, 0, 2);  // writing 0 clears nothing
    CHECK(config.read16(PCI_STATUS) == (PCI_STATUS_DETECTED_PARITY | PCI_STATUS_INTERRUPT));
    // A dword write to Command also hits Status: only the 1 bits clear.
    cfg_write(config, PCI_COMMAND, uint32_t{PCI_STATUS_DETECTED_PARITY} << 16 | PCI_COMMAND_MEMORY, 4);
    CHECK(config.read16(PCI_STATUS) == PCI_STATUS_INTERRUPT);
    CHECK(config.command() == PCI_COMMAND_MEMORY);
}

TEST_CASE("a 32-bit BAR sizes to its size mask and reads back its address", "[pci][config][bar]") {
    PciConfigSpace config(kIdentity);
    config.add_bar({.index = 1, .size = 0x4000, .kind = BarKind::Memory32, .prefetchable = Prefetchable::No});
    config.set_bar_address(1, 0xc100'4000);
    CHECK(cfg_read(config, PCI_BASE_ADDRESS_1, 4) == 0xc100'4000);
    // §6.2.5.1: write all-ones, read the size mask with the flag bits.
    cfg_write(config, PCI_BASE_ADDRESS_1, 0xffff'ffff, 4);
    CHECK(cfg_read(config, PCI_BASE_ADDRESS_1, 4) == 0xffff'c000);
    cfg_write(config, PCI_BASE_ADDRESS_1, 0xc100'4000, 4);
    CHECK(cfg_read(config, PCI_BASE_ADDRESS_1, 4) == 0xc100'4000);
    CHECK(config.bar_address(1) == 0xc100'4000);
}

TEST_CASE("a 64-bit prefetchable BAR spans two registers and sizes across both", "[pci][config][bar]") {
    PciConfigSpace config(kIdentity);
    config.add_bar({.index = 2, .size = 0x10'0000, .kind = BarKind::Memory64, .prefetchable = Prefetchable::Yes});
    config.set_bar_address(2, 0xc200'0000);
    const uint32_t flags = PCI_BASE_ADDRESS_MEM_TYPE_64 | PCI_BASE_ADDRESS_MEM_PREFETCH;
    CHECK(cfg_read(config, PCI_BASE_ADDRESS_2, 4) == (0xc200'0000 | flags));
    CHECK(cfg_read(config, PCI_BASE_ADDRESS_3, 4) == 0);
    cfg_write(config, PCI_BASE_ADDRESS_2, 0xffff'ffff, 4);
    cfg_write(config, PCI_BASE_ADDRESS_3, 0xffff'ffff, 4);
    CHECK(cfg_read(config, PCI_BASE_ADDRESS_2, 4) == (0xfff0'0000 | flags));
    CHECK(cfg_read(config, PCI_BASE_ADDRESS_3, 4) == 0xffff'ffff);
    // A 64-bit address above 4 GiB round-trips through both halves.
    cfg_write(config, PCI_BASE_ADDRESS_2, 0x8000'0000, 4);
    cfg_write(config, PCI_BASE_ADDRESS_3, 0x1, 4);
    CHECK(cfg_read(config, PCI_BASE_ADDRESS_2, 4) == (0x8000'0000 | flags));
    CHECK(cfg_read(config, PCI_BASE_ADDRESS_3, 4) == 1);
    config.set_bar_address(2, 0x4'0000'0000);
    CHECK(cfg_read(config, PCI_BASE_ADDRESS_3, 4) == 4);
}

TEST_CASE("a 64-bit BAR larger than 4 GiB has read-only low bits in its upper register", "[pci][config][bar]") {
    PciConfigSpace config(kIdentity);
    config.add_bar({.index = 0, .size = uint64_t{1} << 33, .kind = BarKind::Memory64});
    cfg_write(config, PCI_BASE_ADDRESS_0, 0xffff'ffff, 4);
    cfg_write(config, PCI_BASE_ADDRESS_1, 0xffff'ffff, 4);
    CHECK(cfg_read(config, PCI_BASE_ADDRESS_0, 4) == PCI_BASE_ADDRESS_MEM_TYPE_64);
    CHECK(cfg_read(config, PCI_BASE_ADDRESS_1, 4) == 0xffff'fffe);
}

TEST_CASE("undeclared BARs, the CardBus pointer and the expansion ROM are hardwired to zero", "[pci][config][bar]") {
    PciConfigSpace config(kIdentity);
    config.add_bar({.index = 0, .size = 0x1000});
    for (int reg : {PCI_BASE_ADDRESS_1, PCI_BASE_ADDRESS_5, PCI_CARDBUS_CIS, PCI_ROM_ADDRESS}) {
        const auto offset = static_cast<uint16_t>(reg);
        cfg_write(config, offset, 0xffff'ffff, 4);
        CHECK(cfg_read(config, offset, 4) == 0);
    }
}

TEST_CASE("BAR declarations that cannot be encoded are refused", "[pci][config][bar]") {
    PciConfigSpace config(kIdentity);
    CHECK_THROWS_AS(config.add_bar({.index = 6, .size = 0x1000}), Error);
    CHECK_THROWS_AS(config.add_bar({.index = 5, .size = 0x1000, .kind = BarKind::Memory64}), Error);
    CHECK_THROWS_AS(config.add_bar({.index = 0, .size = 0x3000}), Error);
    CHECK_THROWS_AS(config.add_bar({.index = 0, .size = 8}), Error);
    CHECK_THROWS_AS(config.add_bar({.index = 0, .size = uint64_t{1} << 32}), Error);
    config.add_bar({.index = 0, .size = 0x1000, .kind = BarKind::Memory64});
    CHECK_THROWS_AS(config.add_bar({.index = 1, .size = 0x1000}), Error);  // upper half of BAR 0
    CHECK_THROWS_AS(config.add_bar({.index = 0, .size = 0x1000}), Error);
    config.add_bar({.index = 3, .size = 0x1000});
    CHECK_THROWS_AS(config.add_bar({.index = 2, .size = 0x1000, .kind = BarKind::Memory64}), Error);
    CHECK_THROWS_AS(config.set_bar_address(3, 0xc100'0800), Error);    // misaligned
    CHECK_THROWS_AS(config.set_bar_address(4, 0xc100'0000), Error);    // undeclared
    CHECK_THROWS_AS(config.set_bar_address(3, 0x1'0000'0000), Error);  // 32-bit BAR above 4 GiB
}

TEST_CASE("capabilities are chained from 0x34 in order, dword aligned", "[pci][config][cap]") {
    PciConfigSpace config(kIdentity);
    CHECK((config.read16(PCI_STATUS) & PCI_STATUS_CAP_LIST) == 0);
    const std::array<uint8_t, 5> vendor{PCI_CAP_ID_VNDR, 0xee, 5, 0xaa, 0xbb};
    const std::array<uint8_t, 12> msix{PCI_CAP_ID_MSIX, 0xee};
    const uint8_t first = config.add_capability(vendor);
    const uint8_t second = config.add_capability(msix);
    const uint8_t third = config.add_capability(vendor);
    CHECK(first == 0x40);
    CHECK(second == 0x48);  // 0x45 rounded up
    CHECK(third == 0x54);
    CHECK((config.read16(PCI_STATUS) & PCI_STATUS_CAP_LIST) != 0);
    CHECK(cfg_read(config, PCI_CAPABILITY_LIST, 1) == first);
    // Walk the list as a driver does.
    std::vector<uint8_t> ids;
    for (uint8_t at = config.read8(PCI_CAPABILITY_LIST); at != 0; at = config.read8(at + PCI_CAP_LIST_NEXT)) {
        ids.push_back(config.read8(at));
        REQUIRE(ids.size() < 10);
    }
    CHECK(ids == std::vector<uint8_t>{PCI_CAP_ID_VNDR, PCI_CAP_ID_MSIX, PCI_CAP_ID_VNDR});
    CHECK(config.read8(first + 3) == 0xaa);
}

TEST_CASE("capability bytes are guest-writable only where the mask says", "[pci][config][cap]") {
    PciConfigSpace config(kIdentity);
    const std::array<uint8_t, 4> body{PCI_CAP_ID_VNDR, 0, 0x11, 0x22};
    const std::array<uint8_t, 4> mask{0xff, 0xff, 0x0f, 0x00};
    const uint8_t cap = config.add_capability(body, mask);
    cfg_write(config, cap, 0xffff'ffff, 4);
    // ID and next stay read-only whatever the mask says.
    CHECK(cfg_read(config, cap, 4) == 0x221f'0009);
    CHECK_THROWS_AS(config.add_capability(std::array<uint8_t, 1>{PCI_CAP_ID_VNDR}), Error);
    CHECK_THROWS_AS(config.add_capability(body, std::array<uint8_t, 2>{}), Error);
}

TEST_CASE("capabilities that do not fit in 256 bytes are refused", "[pci][config][cap]") {
    PciConfigSpace config(kIdentity);
    const std::vector<uint8_t> big(96, PCI_CAP_ID_VNDR);
    config.add_capability(big);  // 0x40..0x9f
    config.add_capability(big);  // 0xa0..0xff
    CHECK_THROWS_AS(config.add_capability(std::array<uint8_t, 2>{PCI_CAP_ID_VNDR, 0}), Error);
}

TEST_CASE("interrupt line is scratch, interrupt pin read-only", "[pci][config]") {
    PciConfigSpace config(kIdentity);
    config.set_interrupt_pin(InterruptPin::IntA);
    cfg_write(config, PCI_INTERRUPT_LINE, 0xffff, 2);
    CHECK(cfg_read(config, PCI_INTERRUPT_LINE, 2) == 0x01ff);
    cfg_write(config, PCI_INTERRUPT_LINE, 0x0b, 1);
    CHECK(cfg_read(config, PCI_INTERRUPT_LINE, 1) == 0x0b);
}

TEST_CASE("config space past 256 bytes reads as zeros and ignores writes", "[pci][config]") {
    PciConfigSpace config(kIdentity);
    cfg_write(config, 0x100, 0xffff'ffff, 4);
    CHECK(cfg_read(config, 0x100, 4) == 0);
    CHECK(cfg_read(config, 0xffc, 4) == 0);
    // An access straddling the end keeps the in-range bytes.
    config.write8(0xff, 0x7e);
    CHECK(cfg_read(config, 0xfe, 4) == 0x7e00);
}

TEST_CASE("a guest moving a BAR reads back its value while the assignment is kept", "[pci][config][bar]") {
    PciConfigSpace config(kIdentity);
    config.add_bar({.index = 0, .size = 0x1000});
    config.set_bar_address(0, 0xc100'0000);
    cfg_write(config, PCI_BASE_ADDRESS_0, 0xc200'0000, 4);
    CHECK(cfg_read(config, PCI_BASE_ADDRESS_0, 4) == 0xc200'0000);
    CHECK(config.bar_address(0) == 0xc100'0000);
    cfg_write(config, PCI_BASE_ADDRESS_0, 0xc300'0000, 4);  // logged once only; no crash either way
    CHECK(cfg_read(config, PCI_BASE_ADDRESS_0, 4) == 0xc300'0000);
}
