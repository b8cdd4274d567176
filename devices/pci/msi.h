#pragma once

#include <cstdint>

namespace keel::pci {

// One MSI message (PCI 3.0 §6.8.2.6-8): a 64-bit address and 32-bit data.
// On x86 the address encodes the destination APIC and the data the vector
// (Intel SDM vol. 3 §11.11); keel passes them to KVM unchanged.
struct MsiMessage {
    uint64_t address = 0;
    uint32_t data = 0;
    friend bool operator==(const MsiMessage&, const MsiMessage&) = default;
};

// Where a function's MSI-X vectors go. keel's implementation programs a KVM
// MSI route per vector and signals it through an irqfd (vmm/core/msi_routes.h);
// tests record the calls. Vector numbers are the function's own (0-based
// table entries).
class MsiVectorSink {
public:
    virtual ~MsiVectorSink() = default;
    // From now on `vector` sends `message`. Called on a vCPU thread with the
    // MSI-X state's lock held, always before a trigger() that needs the new
    // message; must not call back into the MSI-X state.
    virtual void configure(uint16_t vector, const MsiMessage& message) = 0;
    // Send the message last configured for `vector`. Any thread; also called
    // with the MSI-X lock held, so it must not block for long.
    virtual void trigger(uint16_t vector) = 0;
};

}  // namespace keel::pci
