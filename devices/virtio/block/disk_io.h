#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "virtio/block/disk_options.h"

namespace keel::block {

// What a disk operation does to the image.
enum class DiskOpType : uint8_t {
    Read,              // preadv; fewer bytes than asked only at the end of the file
    Write,             // pwritev, all bytes or an error
    Flush,             // fdatasync: every completed write is on stable storage
    Discard,           // fallocate(PUNCH_HOLE | KEEP_SIZE); advisory, so "not supported" is success
    WriteZeroes,       // fallocate(ZERO_RANGE | KEEP_SIZE), else writing zeros (blocks stay allocated)
    WriteZeroesUnmap,  // fallocate(PUNCH_HOLE | KEEP_SIZE), else as WriteZeroes
};

// The system call an operation runs next. An operation may need several:
// short transfers continue where they stopped, and write-zeroes falls back
// from punch-hole to zero-range to writing zeros when the file system
// refuses one (EOPNOTSUPP).
enum class DiskStep : uint8_t { ReadV, WriteV, Fsync, PunchHole, ZeroRange, ZeroFill };

// One operation. The caller owns it and keeps it, and the iovecs it points
// at, alive and untouched from enqueue() until the engine hands it back in
// DiskIoClient::disk_io_complete(); the engine may advance the iovecs.
struct DiskIoOp {
    DiskOpType type = DiskOpType::Read;
    uint64_t offset = 0;  // bytes into the image
    uint64_t length = 0;  // Read/Write: the iovecs' total; others: the range (Flush: unused)
    iovec* iov = nullptr;
    uint32_t iov_count = 0;

    // Engine state (set by enqueue()).
    DiskStep step = DiskStep::ReadV;
    uint64_t done = 0;       // bytes of this step finished so far
    uint32_t iov_index = 0;  // first iovec not fully transferred
    uint8_t retries = 0;     // EINTR/EAGAIN resubmissions
};

// Receives finished operations, on the thread that called reap()/wait_idle().
// `result` is >= 0 on success — for Read the bytes read (short only at the
// end of the file), otherwise 0 — or -errno.
class DiskIoClient {
public:
    virtual void disk_io_complete(DiskIoOp& op, int64_t result) = 0;

protected:
    ~DiskIoClient() = default;
};

// The host side of a disk: an engine that runs DiskIoOps against one file
// descriptor. Single-threaded: the owner serialises every call (the block
// device calls it under its lock).
//
// Protocol: enqueue() any number of operations (at most queue_depth() in
// flight), submit() them, then reap() what is ready. Operations that are not
// ready then make completion_fd() readable when they finish; call
// acknowledge_completion_signal() and reap() again.
class DiskIo {
public:
    virtual ~DiskIo() = default;

    [[nodiscard]] virtual DiskIoEngine engine() const = 0;
    // An eventfd that becomes readable when completions are waiting, or -1
    // when every operation completes before the reap() that follows submit().
    [[nodiscard]] virtual int completion_fd() const = 0;
    virtual void acknowledge_completion_signal() = 0;
    [[nodiscard]] virtual uint32_t queue_depth() const = 0;
    // Enqueued and not yet handed back.
    [[nodiscard]] virtual uint32_t in_flight() const = 0;

    // Precondition: in_flight() < queue_depth().
    virtual void enqueue(DiskIoOp& op) = 0;
    virtual void submit() = 0;
    // Hands every finished operation to `client` (which may enqueue more);
    // returns how many.
    virtual uint32_t reap(DiskIoClient& client) = 0;
    // Blocks until nothing is in flight, handing operations to `client` as
    // they finish. Used on device reset: the kernel must not write into guest
    // buffers the driver got back.
    virtual void wait_idle(DiskIoClient& client) = 0;
    // Points later operations at another file (the disk's image was replaced:
    // PATCH /drives/{id}) and forgets what the old file system did not
    // support. Precondition: in_flight() == 0.
    virtual void set_fd(int fd) = 0;
};

// io_uring when `engine` asks for it and the kernel allows it (it is missing,
// or refused by seccomp, on some hosts: then logs once and returns the
// synchronous engine), else the synchronous engine. `fd` must outlive the
// engine.
[[nodiscard]] std::unique_ptr<DiskIo> make_disk_io(DiskIoEngine engine, int fd, uint32_t queue_depth);

// Internals shared by the engines (disk_io.cc).
namespace detail {

enum class StepOutcome : uint8_t { Resubmit, Complete };

// What a file system turned out not to support, learnt from EOPNOTSUPP so
// later operations skip straight to what works.
struct FallocateSupport {
    bool punch_hole = true;
    bool zero_range = true;
};

// Resets the engine state of `op` and picks its first step.
void start_op(DiskIoOp& op, const FallocateSupport& support);
// Accounts one step's system-call result (bytes or -errno). On Complete,
// `result` becomes the operation's final result.
[[nodiscard]] StepOutcome advance_op(DiskIoOp& op, int64_t& result, FallocateSupport& support);
// ZeroFill writes come from a static zero buffer, zero_chunk(op) bytes at a time.
[[nodiscard]] const uint8_t* zero_buffer();
[[nodiscard]] uint64_t zero_chunk(const DiskIoOp& op);
// Runs the current step of `op` with a blocking system call; bytes or -errno.
[[nodiscard]] int64_t run_step_blocking(int fd, const DiskIoOp& op);

std::unique_ptr<DiskIo> make_sync_disk_io(int fd, uint32_t queue_depth);
// nullptr (and the reason in `why_not`) when io_uring cannot be used.
std::unique_ptr<DiskIo> make_uring_disk_io(int fd, uint32_t queue_depth, std::string& why_not);

}  // namespace detail

}  // namespace keel::block
