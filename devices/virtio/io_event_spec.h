#pragma once

#include <cstdint>
#include <optional>

#include "memory/gpa.h"

namespace keel::virtio {

// One KVM ioeventfd a transport wants registered (KVM_IOEVENTFD): a guest
// write of `length` bytes at `address` (whose value equals `datamatch`, when
// set) signals `fd` inside KVM, without a VM exit reaching keel. The fd is
// owned by the transport and lives as long as it does.
struct IoEventSpec {
    Gpa address;
    uint32_t length = 0;
    std::optional<uint64_t> datamatch;
    int fd = -1;
};

}  // namespace keel::virtio
