#pragma once

// What every keel fuzz target reads its input with: a cursor that yields
// zeros once the data runs out (so every input is a complete program), and
// the invariant check that turns a broken invariant into a crash libFuzzer
// reports.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

namespace keel::fuzz {

inline void check(bool condition) {
    if (!condition) std::abort();
}

class FuzzInput {
public:
    explicit FuzzInput(std::span<const uint8_t> data) : m_data(data) {}
    [[nodiscard]] bool empty() const { return m_pos >= m_data.size(); }
    uint8_t u8() { return empty() ? 0 : m_data[m_pos++]; }
    // Little endian; the reads are sequenced (operands of | are not).
    uint16_t u16() {
        const uint8_t low = u8();
        return static_cast<uint16_t>(low | (u8() << 8));
    }
    uint32_t u32() {
        const uint16_t low = u16();
        return static_cast<uint32_t>(low | (uint32_t{u16()} << 16));
    }
    // The next n bytes, or fewer when the data ends.
    std::span<const uint8_t> bytes(size_t n) {
        const size_t at = std::min(m_pos, m_data.size());
        n = std::min(n, m_data.size() - at);
        m_pos += n;
        return m_data.subspan(at, n);
    }

private:
    std::span<const uint8_t> m_data;
    size_t m_pos = 0;
};

}  // namespace keel::fuzz
