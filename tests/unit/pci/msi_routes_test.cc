#include "core/msi_routes.h"

#include <catch2/catch.hpp>
#include <vector>

using namespace keel;

namespace {

// KVM's default_routing[] (arch/x86/kvm/irq_comm.c), written out as a table.
struct IrqchipRoute {
    uint32_t gsi;
    uint32_t irqchip;
    uint32_t pin;
};

std::vector<IrqchipRoute> expected_default_routes() {
    std::vector<IrqchipRoute> routes;
    for (uint32_t gsi = 0; gsi < 24; ++gsi) {
        routes.push_back({gsi, KVM_IRQCHIP_IOAPIC, gsi});
        if (gsi < 8) routes.push_back({gsi, KVM_IRQCHIP_PIC_MASTER, gsi});
        if (gsi >= 8 && gsi < 16) routes.push_back({gsi, KVM_IRQCHIP_PIC_SLAVE, gsi - 8});
    }
    return routes;
}

}  // namespace

TEST_CASE("the routing table starts with KVM's default irqchip routes", "[pci][msi-routes]") {
    const auto table = build_gsi_routing({});
    const auto expected = expected_default_routes();
    REQUIRE(table.size() == 40);
    REQUIRE(table.size() == expected.size());
    for (size_t i = 0; i < table.size(); ++i) {
        INFO("entry " << i);
        CHECK(table[i].gsi == expected[i].gsi);
        CHECK(table[i].type == KVM_IRQ_ROUTING_IRQCHIP);
        CHECK(table[i].flags == 0);
        CHECK(table[i].u.irqchip.irqchip == expected[i].irqchip);
        CHECK(table[i].u.irqchip.pin == expected[i].pin);
    }
}

TEST_CASE("MSI routes follow the defaults with the message split into halves", "[pci][msi-routes]") {
    const std::vector<MsiRoute> routes{{24, {0xfee0'1000, 0x4041}}, {25, {0x1'fee0'0000, 0x22}}};
    const auto table = build_gsi_routing(routes);
    REQUIRE(table.size() == 42);
    CHECK(table[40].gsi == 24);
    CHECK(table[40].type == KVM_IRQ_ROUTING_MSI);
    CHECK(table[40].flags == 0);  // no KVM_MSI_VALID_DEVID on x86
    CHECK(table[40].u.msi.address_lo == 0xfee0'1000);
    CHECK(table[40].u.msi.address_hi == 0);
    CHECK(table[40].u.msi.data == 0x4041);
    CHECK(table[41].gsi == 25);
    CHECK(table[41].u.msi.address_lo == 0xfee0'0000);
    CHECK(table[41].u.msi.address_hi == 1);
}

TEST_CASE("MSI GSIs start right above the IOAPIC pins", "[pci][msi-routes]") {
    CHECK(MsiRouter::kFirstMsiGsi == 24);
}
