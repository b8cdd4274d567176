#pragma once

#include <compare>
#include <cstdint>
#include <optional>

namespace keel {

// A guest-physical address. A distinct type so a host pointer, an offset and a
// guest address can't be mixed up; arithmetic that a guest can influence goes
// through checked_add.
struct Gpa {
    uint64_t value = 0;

    constexpr Gpa() = default;
    constexpr explicit Gpa(uint64_t v) : value(v) {}

    [[nodiscard]] constexpr std::optional<Gpa> checked_add(uint64_t offset) const {
        if (offset > UINT64_MAX - value) return std::nullopt;
        return Gpa(value + offset);
    }
    // For layout constants we control; never for guest-supplied values.
    [[nodiscard]] constexpr Gpa unchecked_add(uint64_t offset) const { return Gpa(value + offset); }

    constexpr auto operator<=>(const Gpa&) const = default;
};

}  // namespace keel
