#include <catch2/catch.hpp>

#include <vector>

#include "arch/x86_64/acpi/aml.h"
#include "common/error.h"

// Expected bytes are what iasl 20200925 (Debian acpica-tools) emits for the
// ASL quoted next to each; acpi_test.cc additionally compiles a whole DSDT
// with iasl when it is installed and compares.

using namespace keel;
using namespace keel::x86;
using Bytes = aml::Bytes;

TEST_CASE("PkgLength uses the 1-byte form up to 63 bytes in total", "[aml]") {
    CHECK(aml::pkg_length(0) == Bytes{0x01});
    CHECK(aml::pkg_length(62) == Bytes{0x3f});
}

TEST_CASE("PkgLength uses the 2-byte form up to 4095 bytes in total", "[aml]") {
    CHECK(aml::pkg_length(63) == Bytes{0x41, 0x04});   // total 65
    CHECK(aml::pkg_length(102) == Bytes{0x48, 0x06});  // Buffer(){100 bytes}: total 104
    CHECK(aml::pkg_length(4093) == Bytes{0x4f, 0xff}); // total 0xfff
}

TEST_CASE("PkgLength uses the 3-byte form up to 2^20-1 bytes in total", "[aml]") {
    CHECK(aml::pkg_length(4094) == Bytes{0x81, 0x00, 0x01});     // total 0x1001
    CHECK(aml::pkg_length(5003) == Bytes{0x8e, 0x38, 0x01});     // Buffer(){5000 bytes}
    CHECK(aml::pkg_length(0xfffff - 3) == Bytes{0x8f, 0xff, 0xff});
}

TEST_CASE("PkgLength uses the 4-byte form up to 2^28-1 bytes and refuses more", "[aml]") {
    CHECK(aml::pkg_length(0xfffff - 2) == Bytes{0xc1, 0x00, 0x00, 0x01});  // total 0x100001
    CHECK(aml::pkg_length(0xfffffff - 4) == Bytes{0xcf, 0xff, 0xff, 0xff});
    CHECK_THROWS_AS(aml::pkg_length(0xfffffff - 3), Error);
    CHECK_THROWS_AS(aml::pkg_length(SIZE_MAX), Error);
}

TEST_CASE("integers take the shortest encoding", "[aml]") {
    CHECK(aml::integer(0) == Bytes{0x00});
    CHECK(aml::integer(1) == Bytes{0x01});
    CHECK(aml::integer(2) == Bytes{0x0a, 0x02});
    CHECK(aml::integer(0xff) == Bytes{0x0a, 0xff});
    CHECK(aml::integer(0x100) == Bytes{0x0b, 0x00, 0x01});
    CHECK(aml::integer(0xffff) == Bytes{0x0b, 0xff, 0xff});
    CHECK(aml::integer(0x10000) == Bytes{0x0c, 0x00, 0x00, 0x01, 0x00});
    CHECK(aml::integer(0xffffffff) == Bytes{0x0c, 0xff, 0xff, 0xff, 0xff});
    CHECK(aml::integer(0x100000000) == Bytes{0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00});
    CHECK(aml::integer(0xfffffffffffffffe) == Bytes{0x0e, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
}

TEST_CASE("strings are NUL-terminated ASCII", "[aml]") {
    CHECK(aml::string("abc") == Bytes{0x0d, 'a', 'b', 'c', 0x00});
    CHECK(aml::string("") == Bytes{0x0d, 0x00});
    CHECK_THROWS_AS(aml::string(std::string_view("a\0b", 3)), Error);
    CHECK_THROWS_AS(aml::string("caf\xc3\xa9"), Error);
}

TEST_CASE("EISAID compresses to a DWord", "[aml]") {
    CHECK(aml::eisa_id("PNP0501") == Bytes{0x0c, 0x41, 0xd0, 0x05, 0x01});
    CHECK(aml::eisa_id("PNP0303") == Bytes{0x0c, 0x41, 0xd0, 0x03, 0x03});
    CHECK(aml::eisa_id("PNP0C02") == Bytes{0x0c, 0x41, 0xd0, 0x0c, 0x02});
    CHECK_THROWS_AS(aml::eisa_id("pnp0501"), Error);
    CHECK_THROWS_AS(aml::eisa_id("PNP050"), Error);
    CHECK_THROWS_AS(aml::eisa_id("PNP05G1"), Error);
}

TEST_CASE("name strings encode root, parent, dual and multi-segment paths", "[aml]") {
    CHECK(aml::name_string("_SB_") == Bytes{'_', 'S', 'B', '_'});
    CHECK(aml::name_string("KBD") == Bytes{'K', 'B', 'D', '_'});
    CHECK(aml::name_string("\\_SB_") == Bytes{'\\', '_', 'S', 'B', '_'});
    CHECK(aml::name_string("\\_SB.COM1") == Bytes{'\\', 0x2e, '_', 'S', 'B', '_', 'C', 'O', 'M', '1'});
    CHECK(aml::name_string("\\_SB.PCI0.ISA.DEV") ==
          Bytes{'\\', 0x2f, 0x04, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', 'I', 'S', 'A', '_', 'D', 'E', 'V', '_'});
    CHECK(aml::name_string("^^FOO") == Bytes{'^', '^', 'F', 'O', 'O', '_'});
    CHECK(aml::name_string("\\") == Bytes{'\\', 0x00});
}

TEST_CASE("invalid names are refused", "[aml]") {
    CHECK_THROWS_AS(aml::name_string(""), Error);
    CHECK_THROWS_AS(aml::name_string("1ABC"), Error);
    CHECK_THROWS_AS(aml::name_string("ABCDE"), Error);
    CHECK_THROWS_AS(aml::name_string("abc"), Error);
    CHECK_THROWS_AS(aml::name_string("\\_SB..COM1"), Error);
    CHECK_THROWS_AS(aml::name_string("\\_SB."), Error);
}

TEST_CASE("Name with a package: Name(_S5, Package(){5, 0, 0, 0})", "[aml]") {
    const Bytes s5 = aml::name("_S5", aml::package({aml::integer(5), aml::integer(0), aml::integer(0), aml::integer(0)}));
    CHECK(s5 == Bytes{0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0a, 0x05, 0x00, 0x00, 0x00});
}

TEST_CASE("packages hold at most 255 elements", "[aml]") {
    const std::vector<Bytes> full(255, aml::integer(0));
    CHECK(aml::package(full).size() == 1 + 2 + 1 + 255);
    const std::vector<Bytes> too_many(256, aml::integer(0));
    CHECK_THROWS_AS(aml::package(too_many), Error);
}

TEST_CASE("Method(_STA) { Return(0x0F) } and a serialized method", "[aml]") {
    const Bytes sta = aml::method("_STA", 0, aml::MethodSerialization::kNotSerialized,
                                  {aml::return_value(aml::integer(0x0f))});
    CHECK(sta == Bytes{0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xa4, 0x0a, 0x0f});
    const Bytes ser =
        aml::method("SER", 2, aml::MethodSerialization::kSerialized, {aml::return_value(aml::integer(1))});
    CHECK(ser == Bytes{0x14, 0x08, 'S', 'E', 'R', '_', 0x0a, 0xa4, 0x01});
    CHECK_THROWS_AS(aml::method("BAD", 8, aml::MethodSerialization::kNotSerialized, {}), Error);
}

TEST_CASE("Device with a root path and objects", "[aml]") {
    // Device(\_SB.PCI0.ISA.DEV) { Name(_HID, EisaId("PNP0C02")) Method(_STA) { Return(0x0F) } }
    // (iasl -oa: without iasl's name-path shortening)
    const Bytes dev = aml::device(
        "\\_SB.PCI0.ISA.DEV",
        {aml::name("_HID", aml::eisa_id("PNP0C02")),
         aml::method("_STA", 0, aml::MethodSerialization::kNotSerialized, {aml::return_value(aml::integer(0x0f))})});
    const Bytes expected{0x5b, 0x82, 0x28, 0x5c, 0x2f, 0x04, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', 'I', 'S', 'A',
                         '_',  'D',  'E',  'V',  '_',  0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0c, 0x02,
                         0x14, 0x09, '_',  'S',  'T',  'A',  0x00, 0xa4, 0x0a, 0x0f};
    CHECK(dev == expected);
}

TEST_CASE("Scope wraps its terms", "[aml]") {
    CHECK(aml::scope("_SB_", {}) == Bytes{0x10, 0x05, '_', 'S', 'B', '_'});
    CHECK(aml::scope("\\_SB", {aml::name("X", aml::integer(1))}) ==
          Bytes{0x10, 0x0c, '\\', '_', 'S', 'B', '_', 0x08, 'X', '_', '_', '_', 0x01});
}

TEST_CASE("ResourceTemplate with IO and IRQNoFlags (COM1)", "[aml]") {
    // ResourceTemplate() { IO(Decode16, 0x3F8, 0x3F8, 0x01, 0x08) IRQNoFlags() {4} }
    aml::ResourceTemplate crs;
    crs.io(0x3f8, 8).irq_no_flags(4);
    CHECK(crs.encode() == Bytes{0x11, 0x10, 0x0a, 0x0d, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, 0x22,
                                0x10, 0x00, 0x79, 0x00});
    CHECK_THROWS_AS(aml::ResourceTemplate().irq_no_flags(16), Error);
}

TEST_CASE("ResourceTemplate with Memory32Fixed and Interrupt (virtio-mmio)", "[aml]") {
    // ResourceTemplate() { Memory32Fixed(ReadWrite, 0xD0000000, 0x1000)
    //                      Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) {5} }
    aml::ResourceTemplate crs;
    crs.memory32_fixed(aml::MemoryAccess::kReadWrite, 0xd000'0000, 0x1000)
        .interrupt(5, aml::InterruptTrigger::kEdge, aml::InterruptPolarity::kActiveHigh,
                   aml::InterruptSharing::kExclusive);
    CHECK(crs.encode() == Bytes{0x11, 0x1a, 0x0a, 0x17, 0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00,
                                0x10, 0x00, 0x00, 0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00, 0x79, 0x00});
}

TEST_CASE("Interrupt descriptor flags follow trigger, polarity and sharing", "[aml]") {
    // Interrupt(ResourceConsumer, Level, ActiveLow, Shared) {33}
    aml::ResourceTemplate crs;
    crs.interrupt(33, aml::InterruptTrigger::kLevel, aml::InterruptPolarity::kActiveLow,
                  aml::InterruptSharing::kShared);
    const Bytes encoded = crs.encode();
    REQUIRE(encoded.size() == 4 + 9 + 2);
    CHECK(Bytes(encoded.begin() + 4, encoded.begin() + 13) ==
          Bytes{0x89, 0x06, 0x00, 0x0d, 0x01, 0x21, 0x00, 0x00, 0x00});
    aml::ResourceTemplate read_only;
    read_only.memory32_fixed(aml::MemoryAccess::kReadOnly, 0x1000, 0x10);
    CHECK(read_only.encode()[7] == 0x00);
}

TEST_CASE("an empty ResourceTemplate is just the end tag", "[aml]") {
    CHECK(aml::ResourceTemplate().encode() == Bytes{0x11, 0x05, 0x0a, 0x02, 0x79, 0x00});
}
