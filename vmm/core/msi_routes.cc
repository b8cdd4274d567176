#include "core/msi_routes.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "arch/x86_64/layout.h"
#include "common/error.h"

namespace keel {

namespace {

// The dual 8259 of KVM_CREATE_IRQCHIP serves GSIs 0-15.
constexpr uint32_t kPicPins = 16;
constexpr uint32_t kPicPinsPerChip = 8;
constexpr uint32_t kDefaultRouteCount = x86::kIoapicPins + kPicPins;
static_assert(MsiRouter::kFirstMsiGsi == x86::kIoapicPins, "MSI GSIs start above the IOAPIC pins");

kvm_irq_routing_entry irqchip_route(uint32_t gsi, uint32_t irqchip, uint32_t pin) {
    kvm_irq_routing_entry entry{};
    entry.gsi = gsi;
    entry.type = KVM_IRQ_ROUTING_IRQCHIP;
    entry.u.irqchip.irqchip = irqchip;
    entry.u.irqchip.pin = pin;
    return entry;
}

kvm_irq_routing_entry msi_route(const MsiRoute& route) {
    kvm_irq_routing_entry entry{};
    entry.gsi = route.gsi;
    entry.type = KVM_IRQ_ROUTING_MSI;
    entry.u.msi.address_lo = static_cast<uint32_t>(route.message.address);
    entry.u.msi.address_hi = static_cast<uint32_t>(route.message.address >> 32);
    entry.u.msi.data = route.message.data;
    return entry;
}

}  // namespace

std::vector<kvm_irq_routing_entry> build_gsi_routing(std::span<const MsiRoute> msi_routes) {
    std::vector<kvm_irq_routing_entry> table;
    table.reserve(kDefaultRouteCount + msi_routes.size());
    // KVM's default_routing[] order: IOAPIC pin n, then (n < 16) the 8259 pin.
    for (uint32_t gsi = 0; gsi < x86::kIoapicPins; ++gsi) {
        table.push_back(irqchip_route(gsi, KVM_IRQCHIP_IOAPIC, gsi));
        if (gsi < kPicPins) {
            const uint32_t chip = gsi < kPicPinsPerChip ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
            table.push_back(irqchip_route(gsi, chip, gsi % kPicPinsPerChip));
        }
    }
    for (const MsiRoute& route : msi_routes) table.push_back(msi_route(route));
    return table;
}

KvmMsiVectors::KvmMsiVectors(std::shared_ptr<MsiRouter> router, std::vector<uint32_t> gsis,
                             std::vector<UniqueFd> eventfds)
    : m_router(std::move(router)), m_gsis(std::move(gsis)), m_eventfds(std::move(eventfds)) {}

void KvmMsiVectors::configure(uint16_t vector, const pci::MsiMessage& message) {
    if (vector < m_gsis.size()) (void)m_router->set_route(m_gsis[vector], message);
}

void KvmMsiVectors::trigger(uint16_t vector) {
    if (vector >= m_eventfds.size()) return;
    const uint64_t one = 1;
    // EAGAIN only when the counter would overflow: the interrupt is pending anyway.
    (void)!::write(m_eventfds[vector].get(), &one, sizeof one);
}

std::shared_ptr<MsiRouter> MsiRouter::create(const Vm& vm, uint32_t max_routes) {
    if (max_routes <= kDefaultRouteCount) {
        throw Error("KVM offers " + std::to_string(max_routes) +
                    " interrupt routes (KVM_CAP_IRQ_ROUTING); MSI-X needs more than the " +
                    std::to_string(kDefaultRouteCount) + " default ones");
    }
    return std::shared_ptr<MsiRouter>(new MsiRouter(vm, max_routes));
}

std::shared_ptr<KvmMsiVectors> MsiRouter::create_vectors(uint16_t count) {
    std::vector<uint32_t> gsis;
    std::vector<UniqueFd> eventfds;
    {
        std::lock_guard lock(m_mutex);
        // Every allocated GSI may get a route: the table is the default routes
        // plus one per GSI from kFirstMsiGsi, and a GSI must be below the limit too.
        const uint64_t routes_after = kDefaultRouteCount + (m_next_gsi - kFirstMsiGsi) + uint64_t{count};
        if (routes_after > m_max_routes || uint64_t{m_next_gsi} + count > m_max_routes) {
            throw Error("out of KVM interrupt routes for MSI-X (" + std::to_string(m_max_routes) +
                        " in all): use fewer PCI devices or queues");
        }
        for (uint16_t i = 0; i < count; ++i) gsis.push_back(m_next_gsi++);
    }
    for (uint32_t gsi : gsis) {
        UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!fd.valid()) throw_errno("eventfd for MSI-X");
        // A GSI without a route yet: KVM accepts the irqfd and re-resolves it
        // each time the routing table changes (virt/kvm/eventfd.c, irqfd_update).
        m_vm.register_irqfd(fd.get(), gsi);
        eventfds.push_back(std::move(fd));
    }
    return std::make_shared<KvmMsiVectors>(shared_from_this(), std::move(gsis), std::move(eventfds));
}

bool MsiRouter::set_route(uint32_t gsi, const pci::MsiMessage& message) {
    std::lock_guard lock(m_mutex);
    auto it = std::lower_bound(m_routes.begin(), m_routes.end(), gsi,
                               [](const MsiRoute& route, uint32_t value) { return route.gsi < value; });
    const bool existed = it != m_routes.end() && it->gsi == gsi;
    if (existed && it->message == message) return true;
    const pci::MsiMessage previous = existed ? it->message : pci::MsiMessage{};
    if (existed) {
        it->message = message;
    } else {
        it = m_routes.insert(it, MsiRoute{gsi, message});
    }
    try {
        m_vm.set_gsi_routing(build_gsi_routing(m_routes));
        return true;
    } catch (const Error& error) {
        // Keep the table KVM last accepted, so later changes still apply.
        if (existed) {
            it->message = previous;
        } else {
            m_routes.erase(it);
        }
        if (!m_failure_logged) {
            m_failure_logged = true;
            spdlog::warn("MSI route for GSI {} refused ({}); that vector stays silent", gsi, error.what());
        }
        return false;
    }
}

}  // namespace keel
