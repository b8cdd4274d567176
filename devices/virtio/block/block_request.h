#pragma once

#include <linux/virtio_blk.h>

#include <array>
#include <cstdint>

#include "virtio/queue/descriptor_chain.h"

namespace keel::block {

// virtio-blk requests (virtio 1.2 §5.2.6): a 16-byte device-readable header
// (struct virtio_blk_outhdr), data, and a one-byte device-writable status —
// the last writable byte of the chain.
enum class BlockRequestType : uint8_t { Read, Write, Flush, GetId, Discard, WriteZeroes };

// Every way a request can be malformed or refused, one per rule. The status
// the driver gets for each is block_status_for().
enum class BlockRequestError : uint8_t {
    None,
    NoStatusByte,           // no device-writable byte: nowhere to answer (completed with used len 0)
    HeaderTooShort,         // fewer than 16 readable bytes
    UnsupportedType,        // unknown type, or a feature the device did not offer -> UNSUPP
    DataNotSectorMultiple,  // IN/OUT data not a multiple of 512 bytes (§5.2.6.1)
    SectorOutOfRange,       // sector + length overflows or passes the capacity
    WriteToReadOnly,        // OUT, DISCARD or WRITE_ZEROES on a VIRTIO_BLK_F_RO disk (§5.2.6.2)
    GetIdBufferTooShort,    // GET_ID data shorter than VIRTIO_BLK_ID_BYTES (§5.2.6.1: "MUST be 20 bytes")
    SegmentsLengthInvalid,  // DISCARD/WRITE_ZEROES data empty or not whole 16-byte segments
    TooManySegments,        // more than max_discard_seg / max_write_zeroes_seg
    SegmentFlagsUnknown,    // reserved flag bits set -> UNSUPP (§5.2.6.2)
    DiscardWithUnmap,       // UNMAP set on a DISCARD segment -> UNSUPP (§5.2.6.2)
    SegmentTooLarge,        // num_sectors above max_discard_sectors / max_write_zeroes_sectors
};

[[nodiscard]] const char* describe(BlockRequestError error);
// VIRTIO_BLK_S_OK, VIRTIO_BLK_S_IOERR or VIRTIO_BLK_S_UNSUPP.
[[nodiscard]] uint8_t block_status_for(BlockRequestError error);

// What the device accepts; the same numbers it puts in its config space.
struct BlockLimits {
    uint64_t capacity_sectors = 0;
    bool read_only = false;
    bool discard = false;       // VIRTIO_BLK_F_DISCARD offered
    bool write_zeroes = false;  // VIRTIO_BLK_F_WRITE_ZEROES offered
    uint32_t max_discard_sectors = 0;
    uint32_t max_discard_segments = 0;
    uint32_t max_write_zeroes_sectors = 0;
    uint32_t max_write_zeroes_segments = 0;
};

// One range of a DISCARD or WRITE_ZEROES request (struct virtio_blk_discard_write_zeroes).
struct BlockSegment {
    uint64_t sector = 0;
    uint32_t num_sectors = 0;
    bool unmap = false;  // VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP
};

struct BlockRequest {
    // The most segments one request may carry; limits above it are clamped.
    static constexpr uint32_t kMaxSegments = 32;

    BlockRequestType type = BlockRequestType::Read;
    uint64_t sector = 0;
    // Read: the buffers to fill (writable part minus the status byte);
    // GetId: where the ID goes; otherwise empty.
    virtio::Writer data_in;
    // Write: the bytes to write (readable part after the header).
    virtio::Reader data_out;
    uint64_t data_bytes = 0;  // Read/Write: bytes to transfer
    // The status byte; valid unless the error is NoStatusByte.
    virtio::Writer status;
    std::array<BlockSegment, kMaxSegments> segments{};
    uint32_t segment_count = 0;
};

// Parses one request from its chain's readable and writable parts (consumed).
// Pure: no I/O, no allocation. On an error `out.status` is still usable
// (except for NoStatusByte) so the device can answer with
// block_status_for(error).
//
// Checked, in this order: a status byte exists; 16 header bytes; the type is
// known and offered; writes (OUT, DISCARD, WRITE_ZEROES) on a read-only disk;
// then per type: IN/OUT data length and sector range, GET_ID buffer length,
// DISCARD/WRITE_ZEROES segment count, flags, size and range.
// Tolerated (harmless, and the spec gives the device no rule): readable bytes
// after an IN/FLUSH/GET_ID header, writable bytes before an OUT status byte,
// a non-zero sector in FLUSH/GET_ID, the ioprio field.
[[nodiscard]] BlockRequestError parse_block_request(virtio::Reader& readable, virtio::Writer& writable,
                                                    const BlockLimits& limits, BlockRequest& out);

}  // namespace keel::block
