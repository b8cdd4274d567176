#include "common/units.h"

#include <cctype>
#include <charconv>
#include <cstdio>
#include <limits>

#include "common/error.h"

namespace keel {

namespace {

uint64_t unit_multiplier(std::string_view suffix) {
    std::string lower;
    for (char c : suffix) {
        lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (lower.empty() || lower == "m" || lower == "mb" || lower == "mib") return MiB;
    if (lower == "k" || lower == "kb" || lower == "kib") return KiB;
    if (lower == "g" || lower == "gb" || lower == "gib") return GiB;
    if (lower == "t" || lower == "tb" || lower == "tib") return 1024 * GiB;
    if (lower == "b") return 1;
    return 0;
}

}  // namespace

uint64_t parse_memory_size(std::string_view text, std::string_view what) {
    const auto fail = [&](const std::string& why) -> uint64_t {
        throw Error(std::string(what) + ": invalid size '" + std::string(text) + "': " + why);
    };
    uint64_t number = 0;
    const auto* first = text.data();
    const auto* last = text.data() + text.size();
    const auto [end, ec] = std::from_chars(first, last, number);
    if (ec == std::errc::result_out_of_range) return fail("number too large");
    if (ec != std::errc() || end == first) return fail("expected a number with an optional K/M/G/T suffix");
    const uint64_t multiplier = unit_multiplier(std::string_view(end, static_cast<size_t>(last - end)));
    if (multiplier == 0) return fail("unknown unit (use K, M, G or T)");
    if (number > std::numeric_limits<uint64_t>::max() / multiplier) return fail("number too large");
    return number * multiplier;
}

std::string format_size(uint64_t bytes) {
    if (bytes != 0 && bytes % GiB == 0) return std::to_string(bytes / GiB) + " GiB";
    if (bytes != 0 && bytes % MiB == 0) return std::to_string(bytes / MiB) + " MiB";
    if (bytes != 0 && bytes % KiB == 0) return std::to_string(bytes / KiB) + " KiB";
    return std::to_string(bytes) + " B";
}

std::string format_hex(uint64_t value) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(value));
    return buf;
}

}  // namespace keel
