#include "api/json_body.h"

#include <catch2/catch.hpp>

using namespace keel::api;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;

namespace {

std::string error_parsing(std::string_view text) {
    try {
        (void)parse_json(text);
    } catch (const BodyError& e) {
        return e.what();
    }
    FAIL("parsed: " << text);
    return {};
}

std::string error_reading(const std::string& text, const std::function<void(const ObjectFields&)>& read) {
    try {
        const auto body = parse_json(text);
        const ObjectFields fields(body, "Thing", {"name", "count", "flag", "kind"});
        read(fields);
    } catch (const BodyError& e) {
        return e.what();
    }
    FAIL("accepted: " << text);
    return {};
}

}  // namespace

TEST_CASE("invalid JSON, trailing text and repeated keys are refused", "[api][json]") {
    CHECK_THAT(error_parsing(""), Contains("parse error"));
    CHECK_THAT(error_parsing("{\"a\": 1"), Contains("parse error"));
    CHECK_THAT(error_parsing("{\"a\": 1} x"), Contains("parse error"));
    CHECK_THAT(error_parsing("{'a': 1}"), Contains("parse error"));
    CHECK_THAT(error_parsing("{\"a\": 1, \"a\": 2}"), Equals("duplicate field `a`"));
    CHECK_THAT(error_parsing("{\"o\": {\"b\": 1, \"b\": 1}}"), Equals("duplicate field `b`"));
    CHECK_THAT(error_parsing("[{\"c\": 1, \"c\": 2}]"), Equals("duplicate field `c`"));
    // The same key in two different objects is no repeat.
    CHECK(parse_json("{\"a\": {\"a\": 1}, \"b\": {\"a\": 2}}")["b"]["a"] == 2);
    CHECK_THAT(error_parsing("{\"a\": \"\\ud800\"}"), Contains("parse error"));  // lone surrogate
}

TEST_CASE("fields are typed, and the messages are serde's", "[api][json]") {
    CHECK_THAT(error_reading("{\"bogus\": 1}", [](const auto&) {}),
               Equals("unknown field `bogus`, expected one of `name`, `count`, `flag`, `kind`"));
    CHECK_THAT(error_reading("[]", [](const auto&) {}), Equals("invalid type: sequence, expected struct Thing"));
    CHECK_THAT(error_reading("\"x\"", [](const auto&) {}), Equals("invalid type: string \"x\", expected struct Thing"));
    CHECK_THAT(error_reading("{}", [](const auto& f) { (void)f.required_string("name"); }),
               Equals("missing field `name`"));
    CHECK_THAT(error_reading("{\"name\": 3}", [](const auto& f) { (void)f.required_string("name"); }),
               Equals("invalid type: integer `3`, expected a string"));
    CHECK_THAT(error_reading("{\"name\": null}", [](const auto& f) { (void)f.required_string("name"); }),
               Equals("invalid type: null, expected a string"));
    CHECK_THAT(
        error_reading("{\"count\": \"2\"}", [](const auto& f) { (void)f.required_unsigned("count", 255, "u8"); }),
        Equals("invalid type: string \"2\", expected u8"));
    CHECK_THAT(error_reading("{\"count\": 256}", [](const auto& f) { (void)f.required_unsigned("count", 255, "u8"); }),
               Equals("invalid value: integer `256`, expected u8"));
    CHECK_THAT(error_reading("{\"count\": -1}", [](const auto& f) { (void)f.required_unsigned("count", 255, "u8"); }),
               Equals("invalid value: integer `-1`, expected u8"));
    CHECK_THAT(error_reading("{\"count\": 1.5}", [](const auto& f) { (void)f.required_unsigned("count", 255, "u8"); }),
               Equals("invalid type: floating point `1.5`, expected u8"));
    CHECK_THAT(error_reading("{\"flag\": 1}", [](const auto& f) { (void)f.optional_bool("flag"); }),
               Equals("invalid type: integer `1`, expected a boolean"));
    CHECK_THAT(error_reading("{\"kind\": \"C\"}",
                             [](const auto& f) {
                                 (void)f.optional_variant("kind", {"A", "B"});
                             }),
               Equals("unknown variant `C`, expected `A` or `B`"));
    CHECK_THAT(error_reading("{\"kind\": \"D\"}",
                             [](const auto& f) {
                                 (void)f.optional_variant("kind", {"A", "B", "C"});
                             }),
               Equals("unknown variant `D`, expected one of `A`, `B`, `C`"));
}

TEST_CASE("present fields are read, absent and null optional ones are empty", "[api][json]") {
    const auto body = parse_json(R"({"name": "n", "count": 7, "flag": true, "kind": null})");
    const ObjectFields fields(body, "Thing", {"name", "count", "flag", "kind"});
    CHECK(fields.required_string("name") == "n");
    CHECK(fields.required_unsigned("count", 255, "u8") == 7);
    CHECK(fields.optional_bool("flag") == true);
    CHECK_FALSE(fields.has("kind"));
    CHECK_FALSE(fields.optional_variant("kind", {"A"}).has_value());
    const auto empty = parse_json("{}");
    const ObjectFields none(empty, "Thing", {"name"});
    CHECK_FALSE(none.optional_string("name").has_value());
    CHECK_FALSE(none.optional_unsigned("name", 1, "u8").has_value());
}
