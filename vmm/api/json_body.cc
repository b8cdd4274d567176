#include "api/json_body.h"

#include <set>

namespace keel::api {

namespace {

using nlohmann::json;

// "[json.exception.parse_error.101] parse error at line 1, column 2: ..." -> "parse error at ...".
std::string without_exception_id(std::string_view message) {
    if (message.starts_with("[json.exception.")) {
        const auto end = message.find("] ");
        if (end != std::string_view::npos) message.remove_prefix(end + 2);
    }
    return std::string(message);
}

// serde's list of what was expected: "`a`", "`a` or `b`", "one of `a`, `b`, `c`".
std::string expected_list(std::span<const std::string_view> names) {
    if (names.size() == 0) return "there are no fields";
    std::string out;
    size_t i = 0;
    for (const auto name : names) {
        if (i > 0) out += names.size() == 2 ? " or " : ", ";
        out += "`" + std::string(name) + "`";
        ++i;
    }
    return names.size() > 2 ? "one of " + out : out;
}

}  // namespace

json parse_json(std::string_view text) {
    // One set of keys per object being parsed, innermost last.
    std::vector<std::set<std::string>> open_objects;
    std::optional<std::string> repeated;
    const json::parser_callback_t watch_keys = [&](int, json::parse_event_t event, json& parsed) {
        switch (event) {
            case json::parse_event_t::object_start:
                open_objects.emplace_back();
                break;
            case json::parse_event_t::object_end:
                if (!open_objects.empty()) open_objects.pop_back();
                break;
            case json::parse_event_t::key:
                if (!open_objects.empty() && !open_objects.back().insert(parsed.get<std::string>()).second &&
                    !repeated) {
                    repeated = parsed.get<std::string>();
                }
                break;
            default:
                break;
        }
        return true;
    };
    json value;
    try {
        value = json::parse(text, watch_keys);
    } catch (const json::exception& e) {
        throw BodyError(without_exception_id(e.what()));
    }
    if (repeated) throw BodyError("duplicate field `" + *repeated + "`");
    return value;
}

std::string describe_json_value(const json& value) {
    switch (value.type()) {
        case json::value_t::null:
            return "null";
        case json::value_t::boolean:
            return std::string("boolean `") + (value.get<bool>() ? "true" : "false") + "`";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned:
            return "integer `" + value.dump() + "`";
        case json::value_t::number_float:
            return "floating point `" + value.dump() + "`";
        case json::value_t::string:
            return "string " + value.dump();
        case json::value_t::array:
            return "sequence";
        case json::value_t::object:
            return "map";
        default:
            return "value";
    }
}

ObjectFields::ObjectFields(const json& object, std::string_view what, std::span<const std::string_view> fields)
    : m_object(object) {
    if (!object.is_object()) {
        throw BodyError("invalid type: " + describe_json_value(object) + ", expected struct " + std::string(what));
    }
    for (const auto& [key, value] : object.items()) {
        bool known = false;
        for (const auto field : fields) known = known || field == key;
        if (!known) throw BodyError("unknown field `" + key + "`, expected " + expected_list(fields));
    }
}

bool ObjectFields::has(std::string_view field) const {
    return optional_value(field) != nullptr;
}

const json* ObjectFields::optional_value(std::string_view field) const {
    const auto it = m_object.find(field);
    return it == m_object.end() || it->is_null() ? nullptr : &*it;
}

const json& ObjectFields::require(std::string_view field) const {
    const auto it = m_object.find(field);
    if (it == m_object.end()) throw BodyError("missing field `" + std::string(field) + "`");
    return *it;
}

std::string ObjectFields::required_string(std::string_view field) const {
    const auto& value = require(field);
    if (!value.is_string()) throw BodyError("invalid type: " + describe_json_value(value) + ", expected a string");
    return value.get<std::string>();
}

std::optional<std::string> ObjectFields::optional_string(std::string_view field) const {
    if (!has(field)) return std::nullopt;
    return required_string(field);
}

bool ObjectFields::required_bool(std::string_view field) const {
    const auto& value = require(field);
    if (!value.is_boolean()) throw BodyError("invalid type: " + describe_json_value(value) + ", expected a boolean");
    return value.get<bool>();
}

std::optional<bool> ObjectFields::optional_bool(std::string_view field) const {
    if (!has(field)) return std::nullopt;
    return required_bool(field);
}

uint64_t ObjectFields::required_unsigned(std::string_view field, uint64_t max, std::string_view type) const {
    const auto& value = require(field);
    if (value.is_number_unsigned()) {
        const auto number = value.get<uint64_t>();
        if (number > max)
            throw BodyError("invalid value: integer `" + value.dump() + "`, expected " + std::string(type));
        return number;
    }
    if (value.is_number_integer()) {  // negative: nlohmann stores non-negative integers as unsigned
        throw BodyError("invalid value: integer `" + value.dump() + "`, expected " + std::string(type));
    }
    throw BodyError("invalid type: " + describe_json_value(value) + ", expected " + std::string(type));
}

std::optional<uint64_t> ObjectFields::optional_unsigned(std::string_view field, uint64_t max,
                                                        std::string_view type) const {
    if (!has(field)) return std::nullopt;
    return required_unsigned(field, max, type);
}

std::optional<std::string> ObjectFields::optional_variant(std::string_view field,
                                                          std::initializer_list<std::string_view> variants) const {
    if (!has(field)) return std::nullopt;
    const auto& value = require(field);
    if (!value.is_string()) {
        throw BodyError("invalid type: " + describe_json_value(value) + ", expected " +
                        expected_list(std::span(variants.begin(), variants.size())));
    }
    const auto text = value.get<std::string>();
    for (const auto variant : variants) {
        if (variant == text) return text;
    }
    throw BodyError("unknown variant `" + text + "`, expected " +
                    expected_list(std::span(variants.begin(), variants.size())));
}

}  // namespace keel::api
