#pragma once

// Test doubles for what devices talk to: their interrupt line and the VM.

#include <vector>

#include "bus/bus_device.h"

namespace keel::test {

class CountingIrq final : public InterruptLine {
public:
    void trigger() override { ++count; }
    int count = 0;
};

class RecordingLifecycle final : public VmLifecycle {
public:
    void request_exit(VmExitRequest request) override { requests.push_back(request); }
    std::vector<VmExitRequest> requests;
};

}  // namespace keel::test
