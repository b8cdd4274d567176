#pragma once

#include <cstdint>

namespace keel::virtio {

// Every way a driver can break the split-ring protocol (virtio 1.2 §2.7).
// Any of these makes the device set DEVICE_NEEDS_RESET: keel never guesses
// what a malformed ring meant.
enum class QueueError : uint8_t {
    None,
    // Found by Queue::activate().
    SizeNotPowerOfTwo,
    SizeZeroOrTooLarge,
    RingMisaligned,        // desc 16, avail 2, used 4 bytes (§2.7)
    RingOutOfGuestMemory,  // a ring is not inside one region of guest RAM
    // Found by Queue::pop().
    AvailIndexJump,        // avail.idx more than `size` ahead of the device
    HeadIndexOutOfRange,
    NextIndexOutOfRange,
    ChainLoop,             // more hops than descriptors exist
    UnknownDescriptorFlags,
    NestedIndirect,
    IndirectWithNext,      // VIRTQ_DESC_F_INDIRECT together with NEXT (§2.7.5.3.1)
    IndirectBadLength,     // zero, not a multiple of 16, or more entries than allowed
    IndirectNotNegotiated,
    BufferOutOfGuestMemory,
    ReadableAfterWritable, // device-readable descriptors must come first (§2.7.4.2)
    ChainTooLong,          // readable or writable total above 2^32 - 1 bytes
    UsedRingWriteFailed,
};

[[nodiscard]] const char* describe(QueueError error);

}  // namespace keel::virtio
