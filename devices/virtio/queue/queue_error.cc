#include "virtio/queue/queue_error.h"

namespace keel::virtio {

const char* describe(QueueError error) {
    switch (error) {
        case QueueError::None:
            return "no error";
        case QueueError::SizeNotPowerOfTwo:
            return "queue size is not a power of two";
        case QueueError::SizeZeroOrTooLarge:
            return "queue size is zero or above the device maximum";
        case QueueError::RingMisaligned:
            return "a ring is misaligned (descriptors 16, avail 2, used 4 bytes)";
        case QueueError::RingOutOfGuestMemory:
            return "a ring is not inside guest RAM";
        case QueueError::AvailIndexJump:
            return "avail.idx moved more than the queue size ahead";
        case QueueError::HeadIndexOutOfRange:
            return "a chain head index is not below the queue size";
        case QueueError::NextIndexOutOfRange:
            return "a descriptor's next index is out of range";
        case QueueError::ChainLoop:
            return "a descriptor chain loops";
        case QueueError::UnknownDescriptorFlags:
            return "a descriptor has unknown flags";
        case QueueError::NestedIndirect:
            return "an indirect table contains an indirect descriptor";
        case QueueError::IndirectWithNext:
            return "an indirect descriptor also has the NEXT flag";
        case QueueError::IndirectBadLength:
            return "an indirect table length is zero, not a multiple of 16 or too long";
        case QueueError::IndirectNotNegotiated:
            return "an indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC";
        case QueueError::BufferOutOfGuestMemory:
            return "a buffer is not inside one region of guest RAM";
        case QueueError::ReadableAfterWritable:
            return "a device-readable descriptor follows a device-writable one";
        case QueueError::ChainTooLong:
            return "a chain's readable or writable part exceeds 2^32 - 1 bytes";
        case QueueError::UsedRingWriteFailed:
            return "the used ring could not be written";
    }
    return "unknown queue error";
}

}  // namespace keel::virtio
