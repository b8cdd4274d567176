// The io_uring disk engine (liburing). Operations run asynchronously in the
// kernel (page-cache hits often complete inside io_uring_submit, which the
// reap() right after submit() picks up); the rest signal an eventfd
// registered with io_uring_register_eventfd, which the block device watches
// on the event loop.

#include <liburing.h>
#include <linux/falloc.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "virtio/block/disk_io.h"

namespace keel::block::detail {
namespace {

class UringDiskIo final : public DiskIo {
public:
    UringDiskIo(int fd, uint32_t queue_depth) : m_fd(fd), m_depth(queue_depth) { m_ready.reserve(queue_depth); }

    // Returns an empty string on success, else why io_uring cannot be used.
    std::string init() {
        // SUBMIT_ALL (5.18): one bad SQE does not hold back the ones after
        // it. The completion queue is twice the submission queue (the
        // default), and in_flight() <= queue_depth() entries, so it never
        // overflows. Deliberately not SINGLE_ISSUER, COOP_TASKRUN or
        // DEFER_TASKRUN: reset() waits for completions on a vCPU thread while
        // the event-loop thread (the submitter) may sleep on the device lock,
        // and only the default signal-style task_work wakes it to finish
        // those completions.
        io_uring_params params{};
        params.flags = IORING_SETUP_SUBMIT_ALL;
        int r = io_uring_queue_init_params(m_depth, &m_ring, &params);
        if (r == -EINVAL) {
            params = io_uring_params{};
            r = io_uring_queue_init_params(m_depth, &m_ring, &params);
        }
        if (r < 0) return errno_message("io_uring_queue_init", -r);
        m_ring_ready = true;

        if (const std::string missing = missing_opcodes(); !missing.empty()) {
            return "the kernel's io_uring lacks " + missing;
        }
        // The image is NOT registered as a fixed file: a registered file
        // stays referenced until the kernel's asynchronous ring teardown,
        // which would keep the image's OFD lock after the device is gone.
        m_event = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        if (!m_event.valid()) return errno_message("eventfd", errno);
        if ((r = io_uring_register_eventfd(&m_ring, m_event.get())) < 0) {
            return errno_message("io_uring_register_eventfd", -r);
        }
        return {};
    }

    ~UringDiskIo() override {
        if (!m_ring_ready) return;
        // io_uring_queue_exit() does not wait for requests still running, and
        // they may be writing into guest memory: wait for them first.
        Discard discard;
        wait_idle(discard);
        io_uring_queue_exit(&m_ring);
    }
    UringDiskIo(const UringDiskIo&) = delete;
    UringDiskIo& operator=(const UringDiskIo&) = delete;

    [[nodiscard]] DiskIoEngine engine() const override { return DiskIoEngine::Uring; }
    [[nodiscard]] int completion_fd() const override { return m_event.get(); }
    void acknowledge_completion_signal() override {
        uint64_t count = 0;
        // EAGAIN: nothing signalled since the last read, which is fine.
        [[maybe_unused]] const ssize_t r = ::read(m_event.get(), &count, sizeof count);
    }
    [[nodiscard]] uint32_t queue_depth() const override { return m_depth; }
    [[nodiscard]] uint32_t in_flight() const override { return m_in_flight; }

    void enqueue(DiskIoOp& op) override {
        start_op(op, m_support);
        ++m_in_flight;
        queue_step(op);
    }

    void submit() override {
        if (m_unsubmitted == 0) return;
        const int r = io_uring_submit(&m_ring);
        if (r >= 0) {
            m_unsubmitted -= std::min(m_unsubmitted, static_cast<uint32_t>(r));
            return;
        }
        // EAGAIN/EBUSY/EINTR: the SQEs stay in the ring and go with the next
        // submit() (every reap() and wait_idle() submits).
        if (!m_logged_submit_error) {
            m_logged_submit_error = true;
            spdlog::warn("disk I/O: {} (retrying)", errno_message("io_uring_submit", -r));
        }
    }

    uint32_t reap(DiskIoClient& client) override {
        uint32_t count = deliver_ready(client);
        io_uring_cqe* cqe = nullptr;
        while (io_uring_peek_cqe(&m_ring, &cqe) == 0) {
            auto* op = static_cast<DiskIoOp*>(io_uring_cqe_get_data(cqe));
            int64_t result = cqe->res;
            io_uring_cqe_seen(&m_ring, cqe);
            if (advance_op(*op, result, m_support) == StepOutcome::Resubmit) {
                queue_step(*op);
                continue;
            }
            --m_in_flight;
            client.disk_io_complete(*op, result);
            ++count;
        }
        submit();  // resubmitted steps, and what the client enqueued
        return count;
    }

    void set_fd(int fd) override {
        m_fd = fd;
        m_support = {};
    }
    void wait_idle(DiskIoClient& client) override {
        while (m_in_flight > 0) {
            reap(client);
            if (m_in_flight == 0) break;
            const int r = io_uring_submit_and_wait(&m_ring, 1);
            if (r >= 0) {
                m_unsubmitted = 0;
            } else if (r != -EINTR) {
                // The kernel refused to take the queued SQEs for now; try again
                // shortly rather than leave I/O running into freed buffers.
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
        }
    }

private:
    class Discard final : public DiskIoClient {
    public:
        void disk_io_complete(DiskIoOp&, int64_t) override {}
    };

    std::string missing_opcodes() {
        io_uring_probe* probe = io_uring_get_probe_ring(&m_ring);
        if (probe == nullptr) return "IORING_REGISTER_PROBE";
        std::string missing;
        for (const auto& [opcode, name] : {std::pair{IORING_OP_READV, "READV"}, std::pair{IORING_OP_WRITEV, "WRITEV"},
                                           std::pair{IORING_OP_WRITE, "WRITE"}, std::pair{IORING_OP_FSYNC, "FSYNC"},
                                           std::pair{IORING_OP_FALLOCATE, "FALLOCATE"}}) {
            if (!io_uring_opcode_supported(probe, opcode)) missing += std::string(missing.empty() ? "" : ", ") + name;
        }
        io_uring_free_probe(probe);
        return missing;
    }

    // Puts the current step of `op` into the submission queue.
    void queue_step(DiskIoOp& op) {
        io_uring_sqe* sqe = io_uring_get_sqe(&m_ring);
        if (sqe == nullptr) {
            submit();
            sqe = io_uring_get_sqe(&m_ring);
        }
        if (sqe == nullptr) {
            // Cannot happen (at most one SQE per operation in flight and as
            // many SQ entries as the queue depth), but if it does, run the
            // step here rather than lose the operation.
            run_inline(op);
            return;
        }
        prepare(sqe, op);
        io_uring_sqe_set_data(sqe, &op);
        ++m_unsubmitted;
    }

    void prepare(io_uring_sqe* sqe, const DiskIoOp& op) const {
        const uint64_t at = op.offset + op.done;
        const unsigned iov_count = std::min<uint32_t>(op.iov_count - op.iov_index, IOV_MAX);
        switch (op.step) {
            case DiskStep::ReadV:
                io_uring_prep_readv(sqe, m_fd, op.iov + op.iov_index, iov_count, at);
                break;
            case DiskStep::WriteV:
                io_uring_prep_writev(sqe, m_fd, op.iov + op.iov_index, iov_count, at);
                break;
            case DiskStep::Fsync:
                io_uring_prep_fsync(sqe, m_fd, IORING_FSYNC_DATASYNC);
                break;
            case DiskStep::PunchHole:
                io_uring_prep_fallocate(sqe, m_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(at),
                                        static_cast<off_t>(op.length));
                break;
            case DiskStep::ZeroRange:
                io_uring_prep_fallocate(sqe, m_fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(at),
                                        static_cast<off_t>(op.length));
                break;
            case DiskStep::ZeroFill:
                io_uring_prep_write(sqe, m_fd, zero_buffer(), static_cast<unsigned>(zero_chunk(op)), at);
                break;
        }
    }

    void run_inline(DiskIoOp& op) {
        int64_t result = 0;
        do {
            result = run_step_blocking(m_fd, op);
        } while (advance_op(op, result, m_support) == StepOutcome::Resubmit);
        m_ready.push_back({&op, result});
    }

    uint32_t deliver_ready(DiskIoClient& client) {
        uint32_t count = 0;
        for (size_t i = 0; i < m_ready.size(); ++i) {
            const Ready ready = m_ready[i];
            --m_in_flight;
            client.disk_io_complete(*ready.op, ready.result);
            ++count;
        }
        m_ready.clear();
        return count;
    }

    struct Ready {
        DiskIoOp* op;
        int64_t result;
    };

    int m_fd;
    uint32_t m_depth;
    io_uring m_ring{};
    bool m_ring_ready = false;
    UniqueFd m_event;
    uint32_t m_in_flight = 0;
    uint32_t m_unsubmitted = 0;
    bool m_logged_submit_error = false;
    FallocateSupport m_support;
    std::vector<Ready> m_ready;
};

}  // namespace

std::unique_ptr<DiskIo> make_uring_disk_io(int fd, uint32_t queue_depth, std::string& why_not) {
    auto engine = std::make_unique<UringDiskIo>(fd, queue_depth);
    why_not = engine->init();
    if (!why_not.empty()) return nullptr;
    return engine;
}

}  // namespace keel::block::detail
