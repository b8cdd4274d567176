#pragma once

// Small formatting helpers for the loaders' error messages.

#include <cstdint>
#include <cstdio>
#include <string>

#include "common/units.h"

namespace keel {

// "0x1f00": addresses and offsets in messages are hex, as in boot.rst and the ELF spec.
[[nodiscard]] inline std::string to_hex(uint64_t value) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(value));
    return buf;
}

// "300 MiB" when exact, otherwise "12.3 MiB": file sizes are rarely whole MiB.
[[nodiscard]] inline std::string approx_size(uint64_t bytes) {
    if (bytes < MiB || bytes % MiB == 0) return format_size(bytes);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / static_cast<double>(MiB));
    return buf;
}

}  // namespace keel
