#pragma once

// Reading the JSON bodies of API requests and the sections of a config file
// the way Firecracker does (serde with deny_unknown_fields): every field is
// typed, unknown fields and repeated keys are refused, and the message names
// the field and what was expected, in serde's words, so that clients written
// against Firecracker see the errors they already handle.

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace keel::api {

// A body that does not fit its schema. what() is serde-style, e.g.
// "unknown field `foo`, expected one of `a`, `b`" or
// "invalid type: string \"2\", expected u8".
class BodyError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Parses JSON text. Refuses invalid JSON, text after the value and an object
// that repeats a key (nlohmann would keep the last; serde refuses it), with a
// message that says where.
[[nodiscard]] nlohmann::json parse_json(std::string_view text);

// "string \"x\"", "integer `3`", "boolean `true`", "map", ...: how serde
// names an unexpected JSON value.
[[nodiscard]] std::string describe_json_value(const nlohmann::json& value);

// Reads one JSON object against a fixed list of field names. The constructor
// refuses a non-object and any field not in the list.
class ObjectFields {
public:
    ObjectFields(const nlohmann::json& object, std::string_view what, std::span<const std::string_view> fields);
    ObjectFields(const nlohmann::json& object, std::string_view what, std::initializer_list<std::string_view> fields)
        : ObjectFields(object, what, std::span<const std::string_view>(fields.begin(), fields.size())) {}

    [[nodiscard]] bool has(std::string_view field) const;  // present and not null

    [[nodiscard]] std::string required_string(std::string_view field) const;
    [[nodiscard]] std::optional<std::string> optional_string(std::string_view field) const;
    [[nodiscard]] bool required_bool(std::string_view field) const;
    [[nodiscard]] std::optional<bool> optional_bool(std::string_view field) const;
    // An unsigned integer of at most `max`; `type` is serde's name for the
    // Rust field type ("u8", "u16", "usize", "u64") used in messages.
    [[nodiscard]] uint64_t required_unsigned(std::string_view field, uint64_t max, std::string_view type) const;
    [[nodiscard]] std::optional<uint64_t> optional_unsigned(std::string_view field, uint64_t max,
                                                            std::string_view type) const;
    // One of `variants`, as a string.
    [[nodiscard]] std::optional<std::string> optional_variant(std::string_view field,
                                                              std::initializer_list<std::string_view> variants) const;
    [[nodiscard]] const nlohmann::json* optional_value(std::string_view field) const;  // present and not null

private:
    [[nodiscard]] const nlohmann::json& require(std::string_view field) const;
    const nlohmann::json& m_object;
};

}  // namespace keel::api
