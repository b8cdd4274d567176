#pragma once

// MSI-X vectors on KVM: each vector gets a GSI (from 24 up, above the IOAPIC
// pins), an eventfd registered with KVM_IRQFD, and an MSI route in the VM's
// GSI routing table. KVM_SET_GSI_ROUTING replaces the whole table, so every
// change re-sends KVM's default irqchip routes for GSIs 0-23 plus every MSI
// route (build_gsi_routing, a pure function).

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "common/fd.h"
#include "common/kvm_uapi.h"
#include "kvm/vm.h"
#include "pci/msi.h"

namespace keel {

struct MsiRoute {
    uint32_t gsi = 0;
    pci::MsiMessage message;
};

// The routes KVM_CREATE_IRQCHIP installs (arch/x86/kvm/irq_comm.c,
// kvm_setup_default_irq_routing): GSI n -> IOAPIC pin n for n < 24, and
// GSI n -> PIC pin n (master for n < 8, slave for 8..15) for n < 16; then one
// KVM_IRQ_ROUTING_MSI entry per route, in the order given.
[[nodiscard]] std::vector<kvm_irq_routing_entry> build_gsi_routing(std::span<const MsiRoute> msi_routes);

class MsiRouter;

// One device's vectors (pci::MsiVectorSink). trigger() is one eventfd write;
// configure() reprograms the VM's routing table (an ioctl; vCPU thread).
class KvmMsiVectors final : public pci::MsiVectorSink {
public:
    KvmMsiVectors(std::shared_ptr<MsiRouter> router, std::vector<uint32_t> gsis, std::vector<UniqueFd> eventfds);
    void configure(uint16_t vector, const pci::MsiMessage& message) override;
    void trigger(uint16_t vector) override;
    [[nodiscard]] std::span<const uint32_t> gsis() const { return m_gsis; }

private:
    std::shared_ptr<MsiRouter> m_router;
    std::vector<uint32_t> m_gsis;
    std::vector<UniqueFd> m_eventfds;
};

// The VM's routing table. One per VM; thread-safe (devices on different vCPU
// threads configure vectors at once). Lock order: a device's MSI-X lock ->
// the router's lock.
class MsiRouter : public std::enable_shared_from_this<MsiRouter> {
public:
    static constexpr uint32_t kFirstMsiGsi = 24;  // x86::kIoapicPins: GSIs below are IOAPIC pins

    // `max_routes`: KVM_CHECK_EXTENSION(KVM_CAP_IRQ_ROUTING) (KVM_MAX_IRQ_ROUTES).
    static std::shared_ptr<MsiRouter> create(const Vm& vm, uint32_t max_routes);

    // Setup: allocates `count` GSIs, an eventfd + KVM_IRQFD each. Throws
    // keel::Error when GSIs run out. Routes are installed on first configure().
    [[nodiscard]] std::shared_ptr<KvmMsiVectors> create_vectors(uint16_t count);

    // Sets the route of `gsi` and pushes the whole table to KVM. Returns false
    // (and logs once) if KVM refused it; the vector then stays silent.
    bool set_route(uint32_t gsi, const pci::MsiMessage& message);

private:
    MsiRouter(const Vm& vm, uint32_t max_routes) : m_vm(vm), m_max_routes(max_routes) {}

    const Vm& m_vm;
    uint32_t m_max_routes;
    std::mutex m_mutex;
    uint32_t m_next_gsi = kFirstMsiGsi;
    std::vector<MsiRoute> m_routes;  // sorted by GSI
    bool m_failure_logged = false;
};

}  // namespace keel
