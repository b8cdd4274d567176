#include "virtio/block/block_request.h"

#include <algorithm>
#include <bit>
#include <optional>

namespace keel::block {
namespace {

// virtio 1.x structures are little-endian (§2.7, §5.2.6); so is every host
// keel runs on, so the UAPI structs are read as they are.
static_assert(std::endian::native == std::endian::little);
static_assert(sizeof(virtio_blk_outhdr) == 16);
static_assert(sizeof(virtio_blk_discard_write_zeroes) == 16);

constexpr uint64_t kSectorSize = 512;
constexpr uint32_t kKnownSegmentFlags = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;

// [sector, sector + count) lies inside the disk, computed without overflow.
bool in_range(uint64_t sector, uint64_t count, uint64_t capacity) {
    return sector <= capacity && count <= capacity - sector;
}

std::optional<BlockRequestType> request_type(uint32_t type, const BlockLimits& limits) {
    switch (type) {
        case VIRTIO_BLK_T_IN:
            return BlockRequestType::Read;
        case VIRTIO_BLK_T_OUT:
            return BlockRequestType::Write;
        case VIRTIO_BLK_T_FLUSH:
            return BlockRequestType::Flush;
        case VIRTIO_BLK_T_GET_ID:
            return BlockRequestType::GetId;
        case VIRTIO_BLK_T_DISCARD:
            if (limits.discard || limits.read_only) return BlockRequestType::Discard;
            return std::nullopt;
        case VIRTIO_BLK_T_WRITE_ZEROES:
            if (limits.write_zeroes || limits.read_only) return BlockRequestType::WriteZeroes;
            return std::nullopt;
        default:
            return std::nullopt;  // SCSI, GET_LIFETIME, SECURE_ERASE, zoned: not offered
    }
}

bool is_write(BlockRequestType type) {
    return type == BlockRequestType::Write || type == BlockRequestType::Discard ||
           type == BlockRequestType::WriteZeroes;
}

BlockRequestError parse_transfer(const BlockLimits& limits, BlockRequest& out) {
    if (out.data_bytes % kSectorSize != 0) return BlockRequestError::DataNotSectorMultiple;
    if (!in_range(out.sector, out.data_bytes / kSectorSize, limits.capacity_sectors)) {
        return BlockRequestError::SectorOutOfRange;
    }
    return BlockRequestError::None;
}

// DISCARD and WRITE_ZEROES: the readable data is an array of
// struct virtio_blk_discard_write_zeroes (§5.2.6).
BlockRequestError parse_segments(virtio::Reader& readable, const BlockLimits& limits, BlockRequest& out) {
    const bool discard = out.type == BlockRequestType::Discard;
    const uint32_t max_segments =
        std::min(discard ? limits.max_discard_segments : limits.max_write_zeroes_segments, BlockRequest::kMaxSegments);
    const uint32_t max_sectors = discard ? limits.max_discard_sectors : limits.max_write_zeroes_sectors;

    const size_t bytes = readable.remaining();
    if (bytes == 0 || bytes % sizeof(virtio_blk_discard_write_zeroes) != 0) {
        return BlockRequestError::SegmentsLengthInvalid;
    }
    if (bytes / sizeof(virtio_blk_discard_write_zeroes) > max_segments) return BlockRequestError::TooManySegments;

    out.segment_count = 0;
    while (readable.remaining() > 0) {
        const auto raw = readable.read_obj<virtio_blk_discard_write_zeroes>();
        if (!raw) return BlockRequestError::SegmentsLengthInvalid;  // cannot happen: length checked above
        const uint32_t flags = raw->flags;
        if ((flags & ~kKnownSegmentFlags) != 0) return BlockRequestError::SegmentFlagsUnknown;
        const bool unmap = (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) != 0;
        if (discard && unmap) return BlockRequestError::DiscardWithUnmap;
        if (raw->num_sectors > max_sectors) return BlockRequestError::SegmentTooLarge;
        if (!in_range(raw->sector, raw->num_sectors, limits.capacity_sectors)) {
            return BlockRequestError::SectorOutOfRange;
        }
        out.segments[out.segment_count++] = BlockSegment{raw->sector, raw->num_sectors, unmap};
    }
    return BlockRequestError::None;
}

}  // namespace

const char* describe(BlockRequestError error) {
    switch (error) {
        case BlockRequestError::None:
            return "no error";
        case BlockRequestError::NoStatusByte:
            return "no device-writable status byte";
        case BlockRequestError::HeaderTooShort:
            return "request header shorter than 16 bytes";
        case BlockRequestError::UnsupportedType:
            return "unsupported request type";
        case BlockRequestError::DataNotSectorMultiple:
            return "data length not a multiple of 512";
        case BlockRequestError::SectorOutOfRange:
            return "sector range beyond the disk's capacity";
        case BlockRequestError::WriteToReadOnly:
            return "write to a read-only disk";
        case BlockRequestError::GetIdBufferTooShort:
            return "GET_ID buffer shorter than 20 bytes";
        case BlockRequestError::SegmentsLengthInvalid:
            return "discard/write-zeroes data not whole segments";
        case BlockRequestError::TooManySegments:
            return "too many discard/write-zeroes segments";
        case BlockRequestError::SegmentFlagsUnknown:
            return "unknown discard/write-zeroes flags";
        case BlockRequestError::DiscardWithUnmap:
            return "UNMAP flag on a discard segment";
        case BlockRequestError::SegmentTooLarge:
            return "discard/write-zeroes segment too large";
    }
    return "unknown error";
}

uint8_t block_status_for(BlockRequestError error) {
    switch (error) {
        case BlockRequestError::None:
            return VIRTIO_BLK_S_OK;
        case BlockRequestError::UnsupportedType:
        case BlockRequestError::SegmentFlagsUnknown:
        case BlockRequestError::DiscardWithUnmap:
            return VIRTIO_BLK_S_UNSUPP;
        default:
            return VIRTIO_BLK_S_IOERR;
    }
}

BlockRequestError parse_block_request(virtio::Reader& readable, virtio::Writer& writable, const BlockLimits& limits,
                                      BlockRequest& out) {
    // Empty views over the same chain (split_at past the end leaves the
    // original alone): a default-constructed Reader/Writer has no memory.
    out.data_in = writable.split_at(writable.remaining());
    out.data_out = readable.split_at(readable.remaining());
    out.status = out.data_in;
    out.data_bytes = 0;
    out.segment_count = 0;

    // The status byte is the last writable byte (§5.2.6); everything before
    // it is data.
    if (writable.remaining() == 0) return BlockRequestError::NoStatusByte;
    out.status = writable.split_at(writable.remaining() - 1);

    const auto header = readable.read_obj<virtio_blk_outhdr>();
    if (!header) return BlockRequestError::HeaderTooShort;
    out.sector = header->sector;

    const auto type = request_type(header->type, limits);
    if (!type) return BlockRequestError::UnsupportedType;
    out.type = *type;
    if (limits.read_only && is_write(out.type)) return BlockRequestError::WriteToReadOnly;

    switch (out.type) {
        case BlockRequestType::Read:
            out.data_in = writable;
            out.data_bytes = writable.remaining();
            return parse_transfer(limits, out);
        case BlockRequestType::Write:
            out.data_out = readable;
            out.data_bytes = readable.remaining();
            return parse_transfer(limits, out);
        case BlockRequestType::Flush:
            return BlockRequestError::None;
        case BlockRequestType::GetId:
            if (writable.remaining() < VIRTIO_BLK_ID_BYTES) return BlockRequestError::GetIdBufferTooShort;
            out.data_in = writable;
            return BlockRequestError::None;
        case BlockRequestType::Discard:
        case BlockRequestType::WriteZeroes:
            return parse_segments(readable, limits, out);
    }
    return BlockRequestError::UnsupportedType;
}

}  // namespace keel::block
