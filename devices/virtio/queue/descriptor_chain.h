#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

#include "memory/gpa.h"
#include "memory/guest_memory.h"

namespace keel::virtio {

// One validated guest buffer of a chain: [addr, addr + len) lies inside one
// region of guest RAM (checked by Queue::pop, so devices never re-check).
struct GuestBuffer {
    Gpa addr;
    uint32_t len = 0;
};

namespace detail {

// The position Reader and Writer each keep in their part of a chain: buffer
// `index`, `offset` bytes into it, and `limit` bytes left in this view
// (split_at() lowers it). One implementation serves both directions.
struct ChainCursor {
    const GuestMemory* memory = nullptr;
    std::span<const GuestBuffer> buffers;
    size_t index = 0;
    size_t offset = 0;
    size_t limit = 0;

    ChainCursor() = default;
    ChainCursor(const GuestMemory& memory, std::span<const GuestBuffer> buffers);
    // Moves forward by min(count, limit) bytes; returns how many.
    size_t advance(size_t count);
    // Keeps the next `count` bytes and returns a cursor over the rest.
    ChainCursor split_at(size_t count);
    size_t fill_iovecs(size_t count, std::span<iovec> out, size_t& bytes) const;
};

}  // namespace detail

// Cursor over the device-readable part of a chain. Devices read requests
// through it, never through descriptors. Copying a Reader copies the cursor;
// both views stay valid while their DescriptorChain lives and is not popped
// into again.
class Reader {
public:
    Reader() = default;
    Reader(const GuestMemory& memory, std::span<const GuestBuffer> buffers);

    [[nodiscard]] size_t remaining() const;
    [[nodiscard]] size_t consumed() const { return m_consumed; }

    // All or nothing: false (and nothing consumed) when fewer bytes remain.
    [[nodiscard]] bool read(std::span<uint8_t> dst);
    template <typename T>
    [[nodiscard]] std::optional<T> read_obj() {
        static_assert(std::is_trivially_copyable_v<T>);
        T value{};
        if (!read(std::span(reinterpret_cast<uint8_t*>(&value), sizeof(T)))) return std::nullopt;
        return value;
    }
    [[nodiscard]] bool skip(size_t count);

    // Shrinks this reader to its next `count` bytes and returns a reader over
    // the rest (e.g. a block request's data, then nothing). Returns an empty
    // reader when count >= remaining().
    Reader split_at(size_t count);

    // The next `count` bytes (or fewer, when the chain or `out` runs out) as
    // host iovecs for pwritev/io_uring, without consuming them. Returns the
    // number of iovecs filled; `bytes` gets their total.
    size_t fill_iovecs(size_t count, std::span<iovec> out, size_t& bytes) const;
    void consume(size_t count);

    // pwritev(fd, next `count` bytes, offset), retried on short writes and
    // EINTR; consumes what was written. Returns bytes written or -errno.
    ssize_t write_to_fd_at(int fd, size_t count, off_t offset);

private:
    detail::ChainCursor m_cursor;
    size_t m_consumed = 0;
};

// Cursor over the device-writable part of a chain.
class Writer {
public:
    Writer() = default;
    Writer(const GuestMemory& memory, std::span<const GuestBuffer> buffers);

    [[nodiscard]] size_t remaining() const;
    // What the used ring's `len` reports (virtio 1.2 §2.7.8).
    [[nodiscard]] size_t bytes_written() const { return m_written; }

    [[nodiscard]] bool write(std::span<const uint8_t> src);
    template <typename T>
    [[nodiscard]] bool write_obj(const T& value) {
        static_assert(std::is_trivially_copyable_v<T>);
        return write(std::span(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
    }
    // Writes `count` zero bytes (or fails without writing when fewer remain).
    [[nodiscard]] bool fill_zero(size_t count);

    Writer split_at(size_t count);

    size_t fill_iovecs(size_t count, std::span<iovec> out, size_t& bytes) const;
    void commit(size_t count);  // counts `count` bytes as written and skips them

    // preadv(fd, next `count` bytes, offset); commits what was read. Returns
    // bytes read (short at end of file) or -errno.
    ssize_t read_from_fd_at(int fd, size_t count, off_t offset);

private:
    detail::ChainCursor m_cursor;
    size_t m_written = 0;
};

// A fully validated chain taken from the avail ring. Its buffers are stored
// in the object; pop() into the same object reuses the storage, so a device
// that keeps one chain (or a pool of them, for I/O in flight) allocates
// nothing per request once warm.
class DescriptorChain {
public:
    [[nodiscard]] uint16_t head_index() const { return m_head; }
    [[nodiscard]] Reader reader() const;
    [[nodiscard]] Writer writer() const;
    [[nodiscard]] uint64_t readable_bytes() const { return m_readable_bytes; }
    [[nodiscard]] uint64_t writable_bytes() const { return m_writable_bytes; }
    [[nodiscard]] size_t buffer_count() const { return m_buffers.size(); }

private:
    friend class Queue;
    const GuestMemory* m_memory = nullptr;
    uint16_t m_head = 0;
    std::vector<GuestBuffer> m_buffers;  // readable ones first, then writable
    size_t m_readable_count = 0;
    uint64_t m_readable_bytes = 0;
    uint64_t m_writable_bytes = 0;
};

}  // namespace keel::virtio
