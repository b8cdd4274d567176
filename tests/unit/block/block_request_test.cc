// parse_block_request: one test per rule, over Reader/Writer views built
// straight from guest buffers (no queue needed).
#include "virtio/block/block_request.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "block_test_support.h"

using namespace keel;
using namespace keel::block;
using keel::test::blk_header;
using keel::test::blk_segments;
using keel::test::concat;
using keel::test::Seg;

namespace {

constexpr uint64_t kCapacity = 1000;

BlockLimits limits(bool read_only = false) {
    BlockLimits l;
    l.capacity_sectors = kCapacity;
    l.read_only = read_only;
    l.discard = !read_only;
    l.write_zeroes = !read_only;
    l.max_discard_sectors = 256;
    l.max_discard_segments = 4;
    l.max_write_zeroes_sectors = 128;
    l.max_write_zeroes_segments = 2;
    return l;
}

// Readable bytes in one buffer at 0x1000, writable buffers of the given
// lengths from 0x10000 on.
struct Chain {
    explicit Chain(const std::vector<uint8_t>& readable, const std::vector<uint32_t>& writable = {1})
        : memory(GuestMemory::create({{Gpa{0}, 1 << 20}})) {
        if (!readable.empty()) {
            REQUIRE(memory.write(Gpa{0x1000}, readable));
            readable_buffers.push_back({Gpa{0x1000}, static_cast<uint32_t>(readable.size())});
        }
        uint64_t at = 0x10000;
        for (const uint32_t len : writable) {
            writable_buffers.push_back({Gpa{at}, len});
            at += len + 64;
        }
    }
    BlockRequestError parse(const BlockLimits& l = limits()) {
        virtio::Reader reader(memory, readable_buffers);
        virtio::Writer writer(memory, writable_buffers);
        return parse_block_request(reader, writer, l, request);
    }

    GuestMemory memory;
    std::vector<virtio::GuestBuffer> readable_buffers;
    std::vector<virtio::GuestBuffer> writable_buffers;
    BlockRequest request;
};

}  // namespace

TEST_CASE("a read names its sector, its data buffers and a separate status byte", "[block][request]") {
    Chain c(blk_header(VIRTIO_BLK_T_IN, 7), {1024, 512, 1});
    REQUIRE(c.parse() == BlockRequestError::None);
    CHECK(c.request.type == BlockRequestType::Read);
    CHECK(c.request.sector == 7);
    CHECK(c.request.data_bytes == 1536);
    CHECK(c.request.data_in.remaining() == 1536);
    CHECK(c.request.status.remaining() == 1);
}

TEST_CASE("the status byte is the last writable byte even inside a data buffer", "[block][request]") {
    Chain c(blk_header(VIRTIO_BLK_T_IN, 0), {513});
    REQUIRE(c.parse() == BlockRequestError::None);
    CHECK(c.request.data_bytes == 512);
    REQUIRE(c.request.status.write_obj(uint8_t{0x42}));
    CHECK(c.memory.read_obj<uint8_t>(Gpa{0x10000 + 512}) == 0x42);
}

TEST_CASE("a write takes its data from the readable bytes after the header", "[block][request]") {
    const std::vector<uint8_t> data(1024, 0x5a);
    Chain c(concat(blk_header(VIRTIO_BLK_T_OUT, kCapacity - 2), data));
    REQUIRE(c.parse() == BlockRequestError::None);
    CHECK(c.request.type == BlockRequestType::Write);
    CHECK(c.request.data_bytes == 1024);
    std::vector<uint8_t> got(1024);
    REQUIRE(c.request.data_out.read(got));
    CHECK(got == data);
}

TEST_CASE("flush and get-id parse, and get-id wants 20 bytes", "[block][request]") {
    Chain flush(blk_header(VIRTIO_BLK_T_FLUSH, 0));
    REQUIRE(flush.parse() == BlockRequestError::None);
    CHECK(flush.request.type == BlockRequestType::Flush);

    Chain id(blk_header(VIRTIO_BLK_T_GET_ID, 0), {VIRTIO_BLK_ID_BYTES, 1});
    REQUIRE(id.parse() == BlockRequestError::None);
    CHECK(id.request.type == BlockRequestType::GetId);
    CHECK(id.request.data_in.remaining() == VIRTIO_BLK_ID_BYTES);

    Chain short_id(blk_header(VIRTIO_BLK_T_GET_ID, 0), {VIRTIO_BLK_ID_BYTES - 1, 1});
    CHECK(short_id.parse() == BlockRequestError::GetIdBufferTooShort);
    CHECK(block_status_for(BlockRequestError::GetIdBufferTooShort) == VIRTIO_BLK_S_IOERR);
}

TEST_CASE("a chain without a writable byte has no status to answer with", "[block][request]") {
    Chain c(blk_header(VIRTIO_BLK_T_IN, 0), {});
    CHECK(c.parse() == BlockRequestError::NoStatusByte);
    CHECK(c.request.status.remaining() == 0);
}

TEST_CASE("a header shorter than 16 bytes is an I/O error", "[block][request]") {
    auto header = blk_header(VIRTIO_BLK_T_IN, 0);
    header.resize(15);
    Chain c(header);
    CHECK(c.parse() == BlockRequestError::HeaderTooShort);
    CHECK(c.request.status.remaining() == 1);
    CHECK(block_status_for(BlockRequestError::HeaderTooShort) == VIRTIO_BLK_S_IOERR);
}

TEST_CASE("unknown and unoffered request types are unsupported", "[block][request]") {
    for (const uint32_t type : {2u, 3u, 5u, 10u, 14u, 15u, 16u, 0x80000000u, 0xffffffffu}) {
        INFO("type " << type);
        Chain c(blk_header(type, 0));
        CHECK(c.parse() == BlockRequestError::UnsupportedType);
    }
    BlockLimits no_discard = limits();
    no_discard.discard = false;
    no_discard.write_zeroes = false;
    Chain discard(concat(blk_header(VIRTIO_BLK_T_DISCARD, 0), blk_segments({{0, 8}})));
    CHECK(discard.parse(no_discard) == BlockRequestError::UnsupportedType);
    Chain zeroes(concat(blk_header(VIRTIO_BLK_T_WRITE_ZEROES, 0), blk_segments({{0, 8}})));
    CHECK(zeroes.parse(no_discard) == BlockRequestError::UnsupportedType);
    CHECK(block_status_for(BlockRequestError::UnsupportedType) == VIRTIO_BLK_S_UNSUPP);
}

TEST_CASE("read and write data must be whole sectors", "[block][request]") {
    Chain read(blk_header(VIRTIO_BLK_T_IN, 0), {511, 1});
    CHECK(read.parse() == BlockRequestError::DataNotSectorMultiple);
    Chain write(concat(blk_header(VIRTIO_BLK_T_OUT, 0), std::vector<uint8_t>(700)));
    CHECK(write.parse() == BlockRequestError::DataNotSectorMultiple);
}

TEST_CASE("sectors beyond the capacity, or wrapping around, are I/O errors", "[block][request]") {
    Chain last(blk_header(VIRTIO_BLK_T_IN, kCapacity - 1), {512, 1});
    CHECK(last.parse() == BlockRequestError::None);
    Chain past(blk_header(VIRTIO_BLK_T_IN, kCapacity - 1), {1024, 1});
    CHECK(past.parse() == BlockRequestError::SectorOutOfRange);
    Chain start(blk_header(VIRTIO_BLK_T_IN, kCapacity), {512, 1});
    CHECK(start.parse() == BlockRequestError::SectorOutOfRange);
    Chain empty_at_end(blk_header(VIRTIO_BLK_T_IN, kCapacity), {1});
    CHECK(empty_at_end.parse() == BlockRequestError::None);
    Chain wrap(blk_header(VIRTIO_BLK_T_IN, UINT64_MAX), {512, 1});
    CHECK(wrap.parse() == BlockRequestError::SectorOutOfRange);
    Chain write(concat(blk_header(VIRTIO_BLK_T_OUT, UINT64_MAX - 1), std::vector<uint8_t>(1024)));
    CHECK(write.parse() == BlockRequestError::SectorOutOfRange);
    CHECK(block_status_for(BlockRequestError::SectorOutOfRange) == VIRTIO_BLK_S_IOERR);
}

TEST_CASE("a read-only disk refuses writes, discards and write-zeroes with IOERR", "[block][request]") {
    Chain write(concat(blk_header(VIRTIO_BLK_T_OUT, 0), std::vector<uint8_t>(512)));
    CHECK(write.parse(limits(true)) == BlockRequestError::WriteToReadOnly);
    Chain discard(concat(blk_header(VIRTIO_BLK_T_DISCARD, 0), blk_segments({{0, 8}})));
    CHECK(discard.parse(limits(true)) == BlockRequestError::WriteToReadOnly);
    Chain zeroes(concat(blk_header(VIRTIO_BLK_T_WRITE_ZEROES, 0), blk_segments({{0, 8}})));
    CHECK(zeroes.parse(limits(true)) == BlockRequestError::WriteToReadOnly);
    Chain read(blk_header(VIRTIO_BLK_T_IN, 0), {512, 1});
    CHECK(read.parse(limits(true)) == BlockRequestError::None);
    CHECK(block_status_for(BlockRequestError::WriteToReadOnly) == VIRTIO_BLK_S_IOERR);
}

TEST_CASE("discard and write-zeroes segments are read with their flags", "[block][request]") {
    Chain discard(concat(blk_header(VIRTIO_BLK_T_DISCARD, 0), blk_segments({{8, 16}, {100, 256}})));
    REQUIRE(discard.parse() == BlockRequestError::None);
    CHECK(discard.request.type == BlockRequestType::Discard);
    REQUIRE(discard.request.segment_count == 2);
    CHECK(discard.request.segments[1].sector == 100);
    CHECK(discard.request.segments[1].num_sectors == 256);

    Chain zeroes(concat(blk_header(VIRTIO_BLK_T_WRITE_ZEROES, 0),
                        blk_segments({{0, 1, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP}, {kCapacity - 128, 128}})));
    REQUIRE(zeroes.parse() == BlockRequestError::None);
    REQUIRE(zeroes.request.segment_count == 2);
    CHECK(zeroes.request.segments[0].unmap);
    CHECK_FALSE(zeroes.request.segments[1].unmap);
}

TEST_CASE("segment lists that are empty or not whole segments are I/O errors", "[block][request]") {
    Chain none(blk_header(VIRTIO_BLK_T_DISCARD, 0));
    CHECK(none.parse() == BlockRequestError::SegmentsLengthInvalid);
    auto partial = blk_segments({{0, 8}});
    partial.resize(20);
    Chain odd(concat(blk_header(VIRTIO_BLK_T_DISCARD, 0), partial));
    CHECK(odd.parse() == BlockRequestError::SegmentsLengthInvalid);
}

TEST_CASE("more segments than the device allows are I/O errors", "[block][request]") {
    Chain discard(concat(blk_header(VIRTIO_BLK_T_DISCARD, 0), blk_segments({{0, 1}, {2, 1}, {4, 1}, {6, 1}, {8, 1}})));
    CHECK(discard.parse() == BlockRequestError::TooManySegments);
    Chain zeroes(concat(blk_header(VIRTIO_BLK_T_WRITE_ZEROES, 0), blk_segments({{0, 1}, {2, 1}, {4, 1}})));
    CHECK(zeroes.parse() == BlockRequestError::TooManySegments);
    // Limits above what a request can hold are clamped to kMaxSegments.
    BlockLimits huge = limits();
    huge.max_discard_segments = 1000;
    std::vector<Seg> many(BlockRequest::kMaxSegments + 1, Seg{0, 1});
    Chain too_many(concat(blk_header(VIRTIO_BLK_T_DISCARD, 0), blk_segments(many)));
    CHECK(too_many.parse(huge) == BlockRequestError::TooManySegments);
}

TEST_CASE("unknown segment flags and UNMAP on a discard are unsupported", "[block][request]") {
    Chain flags(concat(blk_header(VIRTIO_BLK_T_WRITE_ZEROES, 0), blk_segments({{0, 1, 2}})));
    CHECK(flags.parse() == BlockRequestError::SegmentFlagsUnknown);
    Chain unmap(
        concat(blk_header(VIRTIO_BLK_T_DISCARD, 0), blk_segments({{0, 1, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP}})));
    CHECK(unmap.parse() == BlockRequestError::DiscardWithUnmap);
    CHECK(block_status_for(BlockRequestError::SegmentFlagsUnknown) == VIRTIO_BLK_S_UNSUPP);
    CHECK(block_status_for(BlockRequestError::DiscardWithUnmap) == VIRTIO_BLK_S_UNSUPP);
}

TEST_CASE("segments above the sector limit or beyond the disk are I/O errors", "[block][request]") {
    Chain big_discard(concat(blk_header(VIRTIO_BLK_T_DISCARD, 0), blk_segments({{0, 257}})));
    CHECK(big_discard.parse() == BlockRequestError::SegmentTooLarge);
    Chain big_zeroes(concat(blk_header(VIRTIO_BLK_T_WRITE_ZEROES, 0), blk_segments({{0, 129}})));
    CHECK(big_zeroes.parse() == BlockRequestError::SegmentTooLarge);
    Chain past(concat(blk_header(VIRTIO_BLK_T_DISCARD, 0), blk_segments({{kCapacity - 1, 2}})));
    CHECK(past.parse() == BlockRequestError::SectorOutOfRange);
    Chain wrap(concat(blk_header(VIRTIO_BLK_T_DISCARD, 0), blk_segments({{UINT64_MAX, 2}})));
    CHECK(wrap.parse() == BlockRequestError::SectorOutOfRange);
}

TEST_CASE("every parse error has a description", "[block][request]") {
    for (int e = 0; e <= static_cast<int>(BlockRequestError::SegmentTooLarge); ++e) {
        CHECK(std::strlen(describe(static_cast<BlockRequestError>(e))) > 0);
    }
}
