#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace keel {

// A fixed-capacity byte queue: the receive FIFO of the UART and the output
// buffer of the i8042. It never allocates, so a guest that stops reading
// cannot make keel grow. Not thread-safe: the owning device holds its lock.
template <size_t Capacity>
class ByteFifo {
    static_assert(Capacity > 0);

public:
    // False (and the byte is not stored) when full.
    bool push(uint8_t byte) {
        if (full()) return false;
        m_bytes[(m_head + m_size) % Capacity] = byte;
        ++m_size;
        return true;
    }

    std::optional<uint8_t> pop() {
        if (empty()) return std::nullopt;
        const uint8_t byte = m_bytes[m_head];
        m_head = (m_head + 1) % Capacity;
        --m_size;
        return byte;
    }

    void clear() {
        m_head = 0;
        m_size = 0;
    }

    [[nodiscard]] size_t size() const { return m_size; }
    [[nodiscard]] size_t space() const { return Capacity - m_size; }
    [[nodiscard]] bool empty() const { return m_size == 0; }
    [[nodiscard]] bool full() const { return m_size == Capacity; }
    static constexpr size_t capacity() { return Capacity; }

private:
    std::array<uint8_t, Capacity> m_bytes{};
    size_t m_head = 0;  // index of the oldest byte
    size_t m_size = 0;
};

}  // namespace keel
