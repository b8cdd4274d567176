#include "common/option_list.h"

#include <string>

#include "common/error.h"

namespace keel {

namespace {

constexpr size_t kMaxDeviceIdLength = 32;

std::string quoted(std::string_view text) {
    return "'" + std::string(text) + "'";
}

std::string key_list(std::span<const std::string_view> keys) {
    std::string list;
    for (const auto key : keys) list += (list.empty() ? "" : ", ") + std::string(key);
    return list;
}

}  // namespace

std::vector<OptionItem> split_option_list(std::string_view text, std::string_view flag,
                                          std::span<const std::string_view> keys) {
    const auto fail = [flag](const std::string& message) { throw Error(std::string(flag) + ": " + message); };
    std::vector<OptionItem> items;
    if (text.empty()) return items;
    std::vector<bool> seen(keys.size(), false);
    size_t start = 0;
    for (;;) {
        const size_t comma = text.find(',', start);
        const std::string_view item = text.substr(start, comma == std::string_view::npos ? comma : comma - start);
        if (item.empty()) fail("empty item (two commas in a row, or a comma at the end)");
        const size_t equals = item.find('=');
        if (equals == std::string_view::npos) {
            fail(quoted(item) + " is not key=value (keys: " + key_list(keys) + ")");
        }
        const std::string_view key = item.substr(0, equals);
        const std::string_view value = item.substr(equals + 1);
        size_t index = 0;
        while (index < keys.size() && keys[index] != key) ++index;
        if (index == keys.size()) fail("unknown key " + quoted(key) + " (expected " + key_list(keys) + ")");
        if (seen[index]) fail("key " + quoted(key) + " given twice");
        seen[index] = true;
        if (value.empty()) fail(std::string(key) + "= needs a value");
        items.emplace_back(key, value);
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return items;
}

bool is_valid_device_id(std::string_view id) {
    if (id.empty() || id.size() > kMaxDeviceIdLength) return false;
    for (const char c : id) {
        const bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

}  // namespace keel
