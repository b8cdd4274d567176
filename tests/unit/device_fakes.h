#pragma once

// Test doubles for what devices talk to: their interrupt line and the VM.

#include <vector>

#include "bus/bus_device.h"

namespace keel::test {

// Counts triggers; as a level line it also models the platform's resample at
// the guest's end of interrupt (what keel's ResampledIrqfdLine does).
class CountingIrq final : public InterruptLine {
public:
    void trigger() override { ++count; }
    void set_level_source(LevelSource asserted) override { level = std::move(asserted); }
    // The guest's EOI: the line is raised again while its source asserts it.
    bool end_of_interrupt() {
        if (!level || !level()) return false;
        trigger();
        return true;
    }
    int count = 0;
    LevelSource level;
};

class RecordingLifecycle final : public VmLifecycle {
public:
    void request_exit(VmExitRequest request) override { requests.push_back(request); }
    std::vector<VmExitRequest> requests;
};

}  // namespace keel::test
