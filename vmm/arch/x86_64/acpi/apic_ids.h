#pragma once

// The APIC IDs of the vCPUs, as both the MADT and the MP table list them.

#include <cstdint>
#include <span>

namespace keel::x86 {

// Largest xAPIC ID a processor may have: 0xff is the broadcast destination,
// and the MADT's Processor Local APIC entry and the MP table's processor entry
// both hold 8 bits.
inline constexpr uint32_t kMaxXapicId = 0xfe;

// Throws keel::Error unless there are 1..kMaxVcpus IDs, each <= kMaxXapicId
// and none repeated. `what` names the table being built.
void validate_apic_ids(std::span<const uint32_t> apic_ids, const char* what);

}  // namespace keel::x86
