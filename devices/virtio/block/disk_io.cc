// The engine-independent part of disk I/O: how one operation proceeds from
// step to step, and the synchronous engine.

#include "virtio/block/disk_io.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <string>
#include <vector>

namespace keel::block::detail {
namespace {

// Zero fill writes come from this buffer. It lives in .bss and is never
// written, so its pages stay the kernel's shared zero page: no memory cost.
constexpr size_t kZeroBufferSize = 256 * 1024;
alignas(4096) uint8_t g_zeros[kZeroBufferSize];

// A step that keeps returning EINTR/EAGAIN gives up with EIO rather than spin.
constexpr uint8_t kMaxRetries = 16;

// Moves past `bytes` transferred bytes of the operation's iovecs.
void advance_iovecs(DiskIoOp& op, uint64_t bytes) {
    while (bytes > 0 && op.iov_index < op.iov_count) {
        iovec& v = op.iov[op.iov_index];
        if (bytes < v.iov_len) {
            v.iov_base = static_cast<uint8_t*>(v.iov_base) + bytes;
            v.iov_len -= bytes;
            return;
        }
        bytes -= v.iov_len;
        v.iov_len = 0;
        ++op.iov_index;
    }
}

StepOutcome complete(int64_t& result, int64_t value) {
    result = value;
    return StepOutcome::Complete;
}

StepOutcome restart_as(DiskIoOp& op, DiskStep step) {
    op.step = step;
    op.done = 0;
    return StepOutcome::Resubmit;
}

// A read or write step moved `result` bytes (or failed).
StepOutcome advance_transfer(DiskIoOp& op, int64_t& result) {
    if (result == 0) {
        // End of file: a read returns what it got (the device zero-fills the
        // rest); a write that makes no progress is an I/O error.
        return op.step == DiskStep::ReadV ? complete(result, static_cast<int64_t>(op.done)) : complete(result, -EIO);
    }
    const auto bytes = static_cast<uint64_t>(result);
    op.done += std::min(bytes, op.length - op.done);
    if (op.step != DiskStep::ZeroFill) advance_iovecs(op, bytes);
    if (op.done < op.length) return StepOutcome::Resubmit;
    return complete(result, op.step == DiskStep::ReadV ? static_cast<int64_t>(op.done) : 0);
}

}  // namespace

void start_op(DiskIoOp& op, const FallocateSupport& support) {
    op.done = 0;
    op.iov_index = 0;
    op.retries = 0;
    switch (op.type) {
        case DiskOpType::Read:
            op.step = DiskStep::ReadV;
            break;
        case DiskOpType::Write:
            op.step = DiskStep::WriteV;
            break;
        case DiskOpType::Flush:
            op.step = DiskStep::Fsync;
            break;
        case DiskOpType::Discard:
            op.step = DiskStep::PunchHole;
            break;
        case DiskOpType::WriteZeroes:
            op.step = support.zero_range ? DiskStep::ZeroRange : DiskStep::ZeroFill;
            break;
        case DiskOpType::WriteZeroesUnmap:
            op.step = support.punch_hole ? DiskStep::PunchHole
                                         : (support.zero_range ? DiskStep::ZeroRange : DiskStep::ZeroFill);
            break;
    }
}

StepOutcome advance_op(DiskIoOp& op, int64_t& result, FallocateSupport& support) {
    if (result == -EINTR || result == -EAGAIN) {
        if (++op.retries > kMaxRetries) return complete(result, -EIO);
        return StepOutcome::Resubmit;
    }
    const bool unsupported = result == -EOPNOTSUPP;
    switch (op.step) {
        case DiskStep::ReadV:
        case DiskStep::WriteV:
        case DiskStep::ZeroFill:
            if (result < 0) return complete(result, result);
            if (op.length == 0) return complete(result, 0);
            return advance_transfer(op, result);
        case DiskStep::Fsync:
            return complete(result, result);
        case DiskStep::PunchHole:
            if (!unsupported) return complete(result, result);
            support.punch_hole = false;
            // A discard may do nothing (virtio 1.2 §5.2.6.2: "MAY deallocate");
            // write-zeroes must still leave zeros behind.
            if (op.type == DiskOpType::Discard) return complete(result, 0);
            return restart_as(op, support.zero_range ? DiskStep::ZeroRange : DiskStep::ZeroFill);
        case DiskStep::ZeroRange:
            if (!unsupported) return complete(result, result);
            support.zero_range = false;
            return restart_as(op, DiskStep::ZeroFill);
    }
    return complete(result, -EIO);
}

const uint8_t* zero_buffer() {
    return g_zeros;
}

uint64_t zero_chunk(const DiskIoOp& op) {
    return std::min<uint64_t>(op.length - op.done, kZeroBufferSize);
}

int64_t run_step_blocking(int fd, const DiskIoOp& op) {
    const auto at = static_cast<off_t>(op.offset + op.done);
    const auto iov_count = static_cast<int>(std::min<uint32_t>(op.iov_count - op.iov_index, IOV_MAX));
    ssize_t r = 0;
    switch (op.step) {
        case DiskStep::ReadV:
            r = ::preadv(fd, op.iov + op.iov_index, iov_count, at);
            break;
        case DiskStep::WriteV:
            r = ::pwritev(fd, op.iov + op.iov_index, iov_count, at);
            break;
        case DiskStep::Fsync:
            r = ::fdatasync(fd);
            break;
        case DiskStep::PunchHole:
            r = ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, at, static_cast<off_t>(op.length));
            break;
        case DiskStep::ZeroRange:
            r = ::fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, at, static_cast<off_t>(op.length));
            break;
        case DiskStep::ZeroFill:
            r = ::pwrite(fd, g_zeros, zero_chunk(op), at);
            break;
    }
    return r < 0 ? -static_cast<int64_t>(errno) : static_cast<int64_t>(r);
}

namespace {

// Runs each operation to the end inside enqueue(), on the caller's thread,
// and hands it back at the next reap(). The fallback when io_uring is not
// available, and the reference the io_uring engine is measured against.
class SyncDiskIo final : public DiskIo {
public:
    SyncDiskIo(int fd, uint32_t queue_depth) : m_fd(fd), m_depth(queue_depth) { m_done.reserve(queue_depth); }

    [[nodiscard]] DiskIoEngine engine() const override { return DiskIoEngine::Sync; }
    [[nodiscard]] int completion_fd() const override { return -1; }
    void acknowledge_completion_signal() override {}
    [[nodiscard]] uint32_t queue_depth() const override { return m_depth; }
    [[nodiscard]] uint32_t in_flight() const override { return static_cast<uint32_t>(m_done.size()); }

    void enqueue(DiskIoOp& op) override {
        start_op(op, m_support);
        int64_t result = 0;
        do {
            result = run_step_blocking(m_fd, op);
        } while (advance_op(op, result, m_support) == StepOutcome::Resubmit);
        // reserve(depth) and the in_flight() < depth precondition keep this
        // from reallocating while reap() walks the vector.
        m_done.push_back({&op, result});
    }
    void submit() override {}

    uint32_t reap(DiskIoClient& client) override {
        uint32_t count = 0;
        // The client may enqueue more while we walk: those land at the end
        // and are handed back in this same call.
        for (size_t i = 0; i < m_done.size(); ++i) {
            const Done done = m_done[i];
            client.disk_io_complete(*done.op, done.result);
            ++count;
        }
        m_done.clear();
        return count;
    }
    void wait_idle(DiskIoClient& client) override { reap(client); }
    void set_fd(int fd) override {
        m_fd = fd;
        m_support = {};
    }

private:
    struct Done {
        DiskIoOp* op;
        int64_t result;
    };
    int m_fd;
    uint32_t m_depth;
    FallocateSupport m_support;
    std::vector<Done> m_done;
};

}  // namespace

std::unique_ptr<DiskIo> make_sync_disk_io(int fd, uint32_t queue_depth) {
    return std::make_unique<SyncDiskIo>(fd, queue_depth);
}

}  // namespace keel::block::detail

namespace keel::block {

std::unique_ptr<DiskIo> make_disk_io(DiskIoEngine engine, int fd, uint32_t queue_depth) {
    if (engine == DiskIoEngine::Uring) {
        std::string why_not;
        if (auto uring = detail::make_uring_disk_io(fd, queue_depth, why_not)) return uring;
        static std::atomic<bool> logged{false};
        if (!logged.exchange(true)) {
            spdlog::warn("disk I/O: io_uring is not available ({}); using synchronous preadv/pwritev", why_not);
        }
    }
    return detail::make_sync_disk_io(fd, queue_depth);
}

}  // namespace keel::block
