#pragma once

// The attacks: each breaks one rule of the virtio spec (or pokes where no
// driver should) against one device and reports what the device did.

#include <stdint.h>

#include "driver.h"

namespace hostile {

// What keel's device did about an attack. An attack lists the outcomes that
// are correct for it.
enum Outcome : uint16_t {
    kNeedsReset = 1 << 0,  // DEVICE_NEEDS_RESET set
    kError = 1 << 1,       // the request was answered with an error status
    kRefused = 1 << 2,     // a status/feature step did not stick (FEATURES_OK, DRIVER_OK)
    kIgnored = 1 << 3,     // nothing changed: the device still works without a reset
    kServed = 1 << 4,      // the request was answered as a (degenerate) normal one
    kSilent = 1 << 5,      // nothing at all happened before the deadline
    kBroken = 1 << 6,      // the device misbehaved (wrote where it must not, lost its state)
};
inline constexpr uint16_t kAnyOutcome = kNeedsReset | kError | kRefused | kIgnored | kServed | kSilent;
const char* outcome_name(uint16_t outcome);

inline constexpr uint8_t kBlock = 1 << 0, kNet = 1 << 1, kRng = 1 << 2, kAllDevices = kBlock | kNet | kRng;

struct Attack {
    const char* name;
    uint8_t devices;  // which device kinds it applies to
    bool pci_only;
    uint16_t expected;  // the acceptable outcomes
    // Runs against a brought-up device (see bring_up) and returns the outcome.
    uint16_t (*run)(Device& device);
};

// Every attack, in the order they run.
const Attack* attacks(uint32_t* count);

// The machine-wide pokes: random port and MMIO accesses over the whole
// address space (outside guest RAM and the console), `count` each, from a
// fixed seed so a failure can be replayed.
void random_port_pokes(uint32_t count, uint64_t seed);
void random_mmio_pokes(uint32_t count, uint64_t seed, uint64_t ram_top);

// Set by main from the PVH memory map: the end of the highest RAM region and
// whether RAM reaches the 32-bit MMIO hole at 3 GiB.
extern uint64_t g_ram_top;
extern bool g_ram_reaches_hole;

}  // namespace hostile
