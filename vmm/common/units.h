#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace keel {

inline constexpr uint64_t KiB = 1024;
inline constexpr uint64_t MiB = 1024 * KiB;
inline constexpr uint64_t GiB = 1024 * MiB;

// Parses integers with an optional K/M/G/T suffix
// (binary units, optional trailing "iB"/"B"); a bare number means MiB, like
// Firecracker's mem_size_mib and QEMU's -m. Throws keel::Error naming `what`.
[[nodiscard]] uint64_t parse_memory_size(std::string_view text, std::string_view what);

// "256 MiB", "2 GiB", "1536 MiB": the largest unit that divides exactly.
[[nodiscard]] std::string format_size(uint64_t bytes);

// "0x1f", "0x0": an address or register value for messages and stats.
[[nodiscard]] std::string format_hex(uint64_t value);

}  // namespace keel
