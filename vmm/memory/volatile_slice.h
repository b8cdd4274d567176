#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace keel {

// The only type that holds a raw host pointer into guest RAM. The guest may
// change the bytes at any time (other vCPUs run concurrently), so callers copy
// data out once and validate the copy, never re-read a field they checked.
class VolatileSlice {
public:
    VolatileSlice(uint8_t* host, size_t size) : m_host(host), m_size(size) {}

    [[nodiscard]] size_t size() const { return m_size; }

    // Copies min(size(), dst.size()) bytes out of guest RAM; returns the count.
    size_t copy_to(std::span<uint8_t> dst, size_t offset = 0) const {
        if (offset >= m_size) return 0;
        const size_t n = std::min(dst.size(), m_size - offset);
        std::memcpy(dst.data(), m_host + offset, n);
        return n;
    }
    size_t copy_from(std::span<const uint8_t> src, size_t offset = 0) const {
        if (offset >= m_size) return 0;
        const size_t n = std::min(src.size(), m_size - offset);
        std::memcpy(m_host + offset, src.data(), n);
        return n;
    }
    void fill(uint8_t value) const { std::memset(m_host, value, m_size); }

    // For iovec-based I/O (preadv/pwritev) that the kernel performs itself.
    [[nodiscard]] void* as_iov_base() const { return m_host; }

private:
    uint8_t* m_host;
    size_t m_size;
};

}  // namespace keel
