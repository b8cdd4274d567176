#pragma once

// Guest RAM for fuzz targets that check what keel writes into it: filled
// with a sentinel byte before each run, so that any byte keel was not meant
// to touch is found by comparing against the sentinel.

#include <cstdint>
#include <cstring>
#include <vector>

#include "memory/guest_memory.h"

namespace keel::fuzz {

class SentinelRam {
public:
    static constexpr uint8_t kSentinel = 0x5a;

    explicit SentinelRam(uint64_t size)
        : m_memory(GuestMemory::create({{Gpa{0}, size}})), m_sentinel(size, kSentinel) {}

    [[nodiscard]] GuestMemory& memory() { return m_memory; }
    [[nodiscard]] uint8_t* bytes() { return m_memory.regions()[0].host; }
    [[nodiscard]] uint64_t size() const { return m_sentinel.size(); }

    void fill() { std::memset(bytes(), kSentinel, m_sentinel.size()); }

    // Whether [start, end) still holds the sentinel. Compares against a copy:
    // the fuzz build is unoptimised, so a byte loop over a MiB would dominate
    // every run.
    [[nodiscard]] bool untouched(uint64_t start, uint64_t end) {
        return end <= start || std::memcmp(bytes() + start, m_sentinel.data(), end - start) == 0;
    }

private:
    GuestMemory m_memory;
    std::vector<uint8_t> m_sentinel;
};

}  // namespace keel::fuzz
