#pragma once

// Shared by the ACPI and MP table tests: guest RAM covering the low 1 MiB where
// the tables live, APIC IDs 0..n-1, and reading back what was written.

#include <catch2/catch.hpp>

#include <cstdint>
#include <numeric>
#include <vector>

#include "arch/x86_64/layout.h"
#include "memory/guest_memory.h"

namespace keel::test {

inline GuestMemory low_memory() { return GuestMemory::create({{Gpa(0), x86::kHighMemStart.value}}); }

inline std::vector<uint32_t> dense_ids(uint32_t count) {
    std::vector<uint32_t> ids(count);
    std::iota(ids.begin(), ids.end(), 0u);
    return ids;
}

inline std::vector<uint8_t> read_bytes(const GuestMemory& mem, Gpa gpa, size_t length) {
    std::vector<uint8_t> bytes(length);
    REQUIRE(mem.read(gpa, bytes));
    return bytes;
}

}  // namespace keel::test
