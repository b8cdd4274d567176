#include "virtio/queue/descriptor_chain.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>

namespace keel::virtio {

namespace {

// iovecs per preadv/pwritev call: on the stack, well below IOV_MAX (1024);
// longer transfers loop.
constexpr size_t kIovecBatch = 64;

// A position in a list of buffers: buffer `index`, `offset` bytes into it.
struct Cursor {
    size_t index = 0;
    size_t offset = 0;
};

// Moves `at` forward by `count` bytes (which the caller knows exist).
void advance(std::span<const GuestBuffer> buffers, Cursor& at, size_t count) {
    while (count > 0 && at.index < buffers.size()) {
        const size_t left = buffers[at.index].len - at.offset;
        if (count < left) {
            at.offset += count;
            return;
        }
        count -= left;
        ++at.index;
        at.offset = 0;
    }
    // Skip exhausted (and zero-length) buffers so `at` names real bytes.
    while (at.index < buffers.size() && at.offset == buffers[at.index].len) {
        ++at.index;
        at.offset = 0;
    }
}

size_t total_length(std::span<const GuestBuffer> buffers) {
    size_t total = 0;
    for (const auto& b : buffers) total += b.len;
    return total;
}

// Calls `fn(VolatileSlice)` for each piece of the next `count` bytes from
// `at`; false when a piece is outside guest memory (never for buffers that
// Queue::pop validated).
template <typename Fn>
bool for_each_piece(const GuestMemory& memory, std::span<const GuestBuffer> buffers, Cursor at, size_t count, Fn&& fn) {
    while (count > 0 && at.index < buffers.size()) {
        const GuestBuffer& b = buffers[at.index];
        const size_t n = std::min(count, size_t{b.len} - at.offset);
        if (n > 0) {
            const auto slice = memory.slice(Gpa{b.addr.value + at.offset}, n);
            if (!slice) return false;
            fn(*slice);
        }
        count -= n;
        ++at.index;
        at.offset = 0;
    }
    return count == 0;
}

size_t fill(const GuestMemory* memory, std::span<const GuestBuffer> buffers, Cursor at, size_t count,
            std::span<iovec> out, size_t& bytes) {
    bytes = 0;
    size_t filled = 0;
    while (count > 0 && filled < out.size() && at.index < buffers.size()) {
        const GuestBuffer& b = buffers[at.index];
        const size_t n = std::min(count, size_t{b.len} - at.offset);
        if (n > 0) {
            const auto slice = memory->slice(Gpa{b.addr.value + at.offset}, n);
            if (!slice) break;
            out[filled++] = iovec{slice->as_iov_base(), n};
            bytes += n;
            count -= n;
        }
        ++at.index;
        at.offset = 0;
    }
    return filled;
}

// The largest count such that offset + count stays a valid off_t.
size_t clamp_to_offset(off_t offset, size_t count) {
    const auto room = static_cast<uint64_t>(INT64_MAX - offset);
    return static_cast<size_t>(std::min<uint64_t>(count, room));
}

// Moves data between the cursor's next `count` bytes and fd at `offset`
// with `io` (preadv or pwritev), retrying EINTR and short transfers and
// advancing the cursor over what moved. Returns the bytes moved or -errno
// (what moved before an error stays advanced).
template <typename Io>
ssize_t transfer_at(detail::ChainCursor& cursor, size_t count, off_t offset, Io&& io, size_t& moved_total) {
    if (offset < 0) return -EINVAL;
    count = clamp_to_offset(offset, std::min(count, cursor.limit));
    size_t done = 0;
    std::array<iovec, kIovecBatch> iov{};
    while (done < count) {
        size_t bytes = 0;
        const size_t n = cursor.fill_iovecs(count - done, iov, bytes);
        if (n == 0) break;
        const ssize_t r = io(iov.data(), static_cast<int>(n), offset + static_cast<off_t>(done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) break;  // end of file, or no progress: don't spin
        moved_total += cursor.advance(static_cast<size_t>(r));
        done += static_cast<size_t>(r);
    }
    return static_cast<ssize_t>(done);
}

}  // namespace

// ---- ChainCursor ----

namespace detail {

ChainCursor::ChainCursor(const GuestMemory& guest_memory, std::span<const GuestBuffer> chain_buffers)
    : memory(&guest_memory), buffers(chain_buffers), limit(total_length(chain_buffers)) {
    Cursor at;
    ::keel::virtio::advance(buffers, at, 0);
    index = at.index;
}

size_t ChainCursor::advance(size_t count) {
    count = std::min(count, limit);
    Cursor at{index, offset};
    ::keel::virtio::advance(buffers, at, count);
    index = at.index;
    offset = at.offset;
    limit -= count;
    return count;
}

ChainCursor ChainCursor::split_at(size_t count) {
    ChainCursor rest = *this;
    if (count >= limit) {
        rest.limit = 0;
        return rest;
    }
    Cursor at{index, offset};
    ::keel::virtio::advance(buffers, at, count);
    rest.index = at.index;
    rest.offset = at.offset;
    rest.limit = limit - count;
    limit = count;
    return rest;
}

size_t ChainCursor::fill_iovecs(size_t count, std::span<iovec> out, size_t& bytes) const {
    if (memory == nullptr) {
        bytes = 0;
        return 0;
    }
    return fill(memory, buffers, Cursor{index, offset}, std::min(count, limit), out, bytes);
}

}  // namespace detail

// ---- Reader ----

Reader::Reader(const GuestMemory& memory, std::span<const GuestBuffer> buffers) : m_cursor(memory, buffers) {}

size_t Reader::remaining() const {
    return m_cursor.limit;
}

bool Reader::read(std::span<uint8_t> dst) {
    if (dst.size() > m_cursor.limit) return false;
    if (dst.empty()) return true;  // also for a default (memory-less) reader
    size_t done = 0;
    const bool ok =
        for_each_piece(*m_cursor.memory, m_cursor.buffers, Cursor{m_cursor.index, m_cursor.offset}, dst.size(),
                       [&](const VolatileSlice& s) { done += s.copy_to(dst.subspan(done)); });
    if (!ok) return false;
    consume(dst.size());
    return true;
}

bool Reader::skip(size_t count) {
    if (count > m_cursor.limit) return false;
    consume(count);
    return true;
}

Reader Reader::split_at(size_t count) {
    Reader rest;
    rest.m_cursor = m_cursor.split_at(count);
    return rest;
}

size_t Reader::fill_iovecs(size_t count, std::span<iovec> out, size_t& bytes) const {
    return m_cursor.fill_iovecs(count, out, bytes);
}

void Reader::consume(size_t count) { m_consumed += m_cursor.advance(count); }

ssize_t Reader::write_to_fd_at(int fd, size_t count, off_t offset) {
    return transfer_at(
        m_cursor, count, offset, [fd](const iovec* iov, int n, off_t at) { return ::pwritev(fd, iov, n, at); },
        m_consumed);
}

// ---- Writer ----

Writer::Writer(const GuestMemory& memory, std::span<const GuestBuffer> buffers) : m_cursor(memory, buffers) {}

size_t Writer::remaining() const {
    return m_cursor.limit;
}

bool Writer::write(std::span<const uint8_t> src) {
    if (src.size() > m_cursor.limit) return false;
    if (src.empty()) return true;
    size_t done = 0;
    const bool ok =
        for_each_piece(*m_cursor.memory, m_cursor.buffers, Cursor{m_cursor.index, m_cursor.offset}, src.size(),
                       [&](const VolatileSlice& s) { done += s.copy_from(src.subspan(done)); });
    if (!ok) return false;
    commit(src.size());
    return true;
}

bool Writer::fill_zero(size_t count) {
    if (count > m_cursor.limit) return false;
    if (count == 0) return true;
    const bool ok = for_each_piece(*m_cursor.memory, m_cursor.buffers, Cursor{m_cursor.index, m_cursor.offset},
                                   count, [](const VolatileSlice& s) { s.fill(0); });
    if (!ok) return false;
    commit(count);
    return true;
}

Writer Writer::split_at(size_t count) {
    Writer rest;
    rest.m_cursor = m_cursor.split_at(count);
    return rest;
}

size_t Writer::fill_iovecs(size_t count, std::span<iovec> out, size_t& bytes) const {
    return m_cursor.fill_iovecs(count, out, bytes);
}

void Writer::commit(size_t count) { m_written += m_cursor.advance(count); }

ssize_t Writer::read_from_fd_at(int fd, size_t count, off_t offset) {
    return transfer_at(
        m_cursor, count, offset, [fd](const iovec* iov, int n, off_t at) { return ::preadv(fd, iov, n, at); },
        m_written);
}

// ---- DescriptorChain ----

Reader DescriptorChain::reader() const {
    if (m_memory == nullptr) return Reader{};
    return Reader(*m_memory, std::span<const GuestBuffer>(m_buffers).first(m_readable_count));
}

Writer DescriptorChain::writer() const {
    if (m_memory == nullptr) return Writer{};
    return Writer(*m_memory, std::span<const GuestBuffer>(m_buffers).subspan(m_readable_count));
}

}  // namespace keel::virtio
