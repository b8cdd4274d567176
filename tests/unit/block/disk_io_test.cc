// The disk engines on their own: both run the same operations with the same
// results, and the step logic (short transfers, EOPNOTSUPP fallbacks,
// retries) behaves as documented.
#include "virtio/block/disk_io.h"

#include <linux/falloc.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <thread>
#include <vector>

#include "block_test_support.h"
#include "virtio/block/disk_image.h"

using namespace keel;
using namespace keel::block;
using keel::test::TempImage;

namespace {

struct Collector final : DiskIoClient {
    void disk_io_complete(DiskIoOp& op, int64_t result) override { done.emplace_back(&op, result); }
    std::vector<std::pair<DiskIoOp*, int64_t>> done;
};

// Runs `op` to completion on `io`; returns its result.
int64_t run(DiskIo& io, DiskIoOp& op) {
    Collector c;
    io.enqueue(op);
    io.submit();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (c.done.empty() && std::chrono::steady_clock::now() < deadline) {
        io.reap(c);
        if (c.done.empty()) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    REQUIRE(c.done.size() == 1);
    CHECK(c.done[0].first == &op);
    CHECK(io.in_flight() == 0);
    return c.done[0].second;
}

DiskIoOp rw_op(DiskOpType type, uint64_t offset, std::vector<iovec>& iov) {
    DiskIoOp op;
    op.type = type;
    op.offset = offset;
    op.iov = iov.data();
    op.iov_count = static_cast<uint32_t>(iov.size());
    for (const auto& v : iov) op.length += v.iov_len;
    return op;
}

DiskIoOp range_op(DiskOpType type, uint64_t offset, uint64_t length) {
    DiskIoOp op;
    op.type = type;
    op.offset = offset;
    op.length = length;
    return op;
}

}  // namespace

TEST_CASE("both engines read, write, flush, discard and zero the image", "[block][io]") {
    const DiskIoEngine engine = GENERATE(DiskIoEngine::Uring, DiskIoEngine::Sync);
    INFO("engine " << to_string(engine));
    TempImage file(1 << 20);
    const DiskImage image = DiskImage::open(file.path(), DiskAccess::ReadWrite);
    auto io = make_disk_io(engine, image.fd(), 8);
    REQUIRE(io->engine() == engine);

    // Write 3 KiB from two scattered buffers, read it back into three.
    std::vector<uint8_t> a(1024, 0x11), b(2048, 0x22);
    std::vector<iovec> out{{a.data(), a.size()}, {b.data(), b.size()}};
    DiskIoOp write = rw_op(DiskOpType::Write, 4096, out);
    CHECK(run(*io, write) == 0);
    std::vector<uint8_t> r1(512), r2(2048), r3(512);
    std::vector<iovec> in{{r1.data(), r1.size()}, {r2.data(), r2.size()}, {r3.data(), r3.size()}};
    DiskIoOp read = rw_op(DiskOpType::Read, 4096, in);
    CHECK(run(*io, read) == 3072);
    CHECK(r1 == std::vector<uint8_t>(512, 0x11));
    CHECK(r2[511] == 0x11);
    CHECK(r2[512] == 0x22);
    CHECK(r3 == std::vector<uint8_t>(512, 0x22));

    DiskIoOp flush = range_op(DiskOpType::Flush, 0, 0);
    CHECK(run(*io, flush) == 0);

    const uint64_t before = file.allocated();
    DiskIoOp discard = range_op(DiskOpType::Discard, 64 * 1024, 256 * 1024);
    CHECK(run(*io, discard) == 0);
    if (keel::test::punches_holes(file)) {  // else the discard is a successful no-op
        CHECK(file.allocated() < before);
        CHECK(file.read(64 * 1024, 256 * 1024) == std::vector<uint8_t>(256 * 1024, 0));
    }

    DiskIoOp zeroes = range_op(DiskOpType::WriteZeroes, 512 * 1024, 8192);
    CHECK(run(*io, zeroes) == 0);
    CHECK(file.read(512 * 1024, 8192) == std::vector<uint8_t>(8192, 0));
    DiskIoOp unmap = range_op(DiskOpType::WriteZeroesUnmap, 600 * 1024, 8192);
    CHECK(run(*io, unmap) == 0);
    CHECK(file.read(600 * 1024, 8192) == std::vector<uint8_t>(8192, 0));
    CHECK(file.size() == 1 << 20);
}

TEST_CASE("a read past the end of the file returns the bytes that exist", "[block][io]") {
    const DiskIoEngine engine = GENERATE(DiskIoEngine::Uring, DiskIoEngine::Sync);
    TempImage file(4096);
    const DiskImage image = DiskImage::open(file.path(), DiskAccess::ReadWrite);
    auto io = make_disk_io(engine, image.fd(), 4);
    std::vector<uint8_t> buf(8192, 0xee);
    std::vector<iovec> in{{buf.data(), buf.size()}};
    DiskIoOp read = rw_op(DiskOpType::Read, 2048, in);
    CHECK(run(*io, read) == 2048);
}

TEST_CASE("write-zeroes falls back to writing zeros where the file system has no ZERO_RANGE", "[block][io]") {
    // tmpfs punches holes but refuses FALLOC_FL_ZERO_RANGE.
    if (::access("/dev/shm", W_OK) != 0) {
        SUCCEED("no writable /dev/shm here");
        return;
    }
    const DiskIoEngine engine = GENERATE(DiskIoEngine::Uring, DiskIoEngine::Sync);
    TempImage file(2 << 20, "/dev/shm");
    const DiskImage image = DiskImage::open(file.path(), DiskAccess::ReadWrite);
    auto io = make_disk_io(engine, image.fd(), 4);
    // 700 KiB: several zero-buffer chunks.
    DiskIoOp zeroes = range_op(DiskOpType::WriteZeroes, 4096, 700 * 1024);
    CHECK(run(*io, zeroes) == 0);
    CHECK(file.read(4096, 700 * 1024) == std::vector<uint8_t>(700 * 1024, 0));
    CHECK(file.read(0, 4096) == TempImage::pattern(4096, 1));
    const uint64_t end = 4096 + 700 * 1024;
    const auto expected = TempImage::pattern(end + 512, 1);
    CHECK(file.read(end, 512) == std::vector<uint8_t>(expected.begin() + end, expected.end()));
    // Learnt: the next one goes straight to zero fill, still correct.
    DiskIoOp again = range_op(DiskOpType::WriteZeroes, 1 << 20, 4096);
    CHECK(run(*io, again) == 0);
    CHECK(file.read(1 << 20, 4096) == std::vector<uint8_t>(4096, 0));
}

TEST_CASE("the step logic continues short transfers and falls back on EOPNOTSUPP", "[block][io]") {
    using namespace keel::block::detail;
    FallocateSupport support;

    SECTION("a short write continues after the bytes written") {
        std::vector<uint8_t> buf(1024);
        std::vector<iovec> iov{{buf.data(), 512}, {buf.data() + 512, 512}};
        DiskIoOp op = rw_op(DiskOpType::Write, 0, iov);
        start_op(op, support);
        int64_t result = 700;
        REQUIRE(advance_op(op, result, support) == StepOutcome::Resubmit);
        CHECK(op.done == 700);
        CHECK(op.iov_index == 1);
        CHECK(op.iov[1].iov_len == 324);
        result = 324;
        REQUIRE(advance_op(op, result, support) == StepOutcome::Complete);
        CHECK(result == 0);
    }
    SECTION("a write that makes no progress is an I/O error; a read that does is end of file") {
        std::vector<uint8_t> buf(1024);
        std::vector<iovec> iov{{buf.data(), buf.size()}};
        DiskIoOp write = rw_op(DiskOpType::Write, 0, iov);
        start_op(write, support);
        int64_t result = 0;
        REQUIRE(advance_op(write, result, support) == StepOutcome::Complete);
        CHECK(result == -EIO);
        DiskIoOp read = rw_op(DiskOpType::Read, 0, iov);
        start_op(read, support);
        result = 512;
        REQUIRE(advance_op(read, result, support) == StepOutcome::Resubmit);
        result = 0;
        REQUIRE(advance_op(read, result, support) == StepOutcome::Complete);
        CHECK(result == 512);
    }
    SECTION("EINTR and EAGAIN are retried a bounded number of times") {
        DiskIoOp op = range_op(DiskOpType::Flush, 0, 0);
        start_op(op, support);
        int retries = 0;
        int64_t result = -EINTR;
        while (advance_op(op, result, support) == StepOutcome::Resubmit) {
            ++retries;
            result = -EAGAIN;
        }
        CHECK(retries == 16);
        CHECK(result == -EIO);
    }
    SECTION("an unsupported punch-hole makes a discard a no-op and write-zeroes fall back") {
        DiskIoOp discard = range_op(DiskOpType::Discard, 0, 4096);
        start_op(discard, support);
        int64_t result = -EOPNOTSUPP;
        REQUIRE(advance_op(discard, result, support) == StepOutcome::Complete);
        CHECK(result == 0);
        CHECK_FALSE(support.punch_hole);

        DiskIoOp unmap = range_op(DiskOpType::WriteZeroesUnmap, 0, 4096);
        start_op(unmap, support);
        CHECK(unmap.step == DiskStep::ZeroRange);  // learnt from the discard
        result = -EOPNOTSUPP;
        REQUIRE(advance_op(unmap, result, support) == StepOutcome::Resubmit);
        CHECK(unmap.step == DiskStep::ZeroFill);
        CHECK_FALSE(support.zero_range);
        result = 4096;
        REQUIRE(advance_op(unmap, result, support) == StepOutcome::Complete);
        CHECK(result == 0);
    }
    SECTION("other errors end the operation with their errno") {
        DiskIoOp op = range_op(DiskOpType::WriteZeroes, 0, 4096);
        start_op(op, support);
        int64_t result = -ENOSPC;
        REQUIRE(advance_op(op, result, support) == StepOutcome::Complete);
        CHECK(result == -ENOSPC);
    }
}

TEST_CASE("the io_uring engine signals its eventfd for completions it did not hand back yet", "[block][io]") {
    TempImage file(1 << 20);
    const DiskImage image = DiskImage::open(file.path(), DiskAccess::ReadWrite);
    auto io = make_disk_io(DiskIoEngine::Uring, image.fd(), 4);
    REQUIRE(io->engine() == DiskIoEngine::Uring);
    REQUIRE(io->completion_fd() >= 0);
    DiskIoOp flush = range_op(DiskOpType::Flush, 0, 0);
    io->enqueue(flush);
    io->submit();
    pollfd p{io->completion_fd(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 5000) == 1);
    io->acknowledge_completion_signal();
    Collector c;
    io->wait_idle(c);
    REQUIRE(c.done.size() == 1);
    CHECK(c.done[0].second == 0);
}

TEST_CASE("the sync engine completes during enqueue and has no completion fd", "[block][io]") {
    TempImage file(4096);
    const DiskImage image = DiskImage::open(file.path(), DiskAccess::ReadWrite);
    auto io = make_disk_io(DiskIoEngine::Sync, image.fd(), 4);
    CHECK(io->completion_fd() == -1);
    DiskIoOp flush = range_op(DiskOpType::Flush, 0, 0);
    io->enqueue(flush);
    CHECK(io->in_flight() == 1);
    Collector c;
    CHECK(io->reap(c) == 1);
    CHECK(io->in_flight() == 0);
}
