#include <catch2/catch.hpp>

#include "common/error.h"
#include "common/units.h"

using namespace keel;

TEST_CASE("memory sizes accept binary suffixes and default to MiB", "[units]") {
    CHECK(parse_memory_size("256", "--memory") == 256 * MiB);
    CHECK(parse_memory_size("256M", "--memory") == 256 * MiB);
    CHECK(parse_memory_size("1G", "--memory") == GiB);
    CHECK(parse_memory_size("2GiB", "--memory") == 2 * GiB);
    CHECK(parse_memory_size("512k", "--memory") == 512 * KiB);
    CHECK(parse_memory_size("1T", "--memory") == 1024 * GiB);
}

TEST_CASE("malformed memory sizes are rejected with the flag named", "[units]") {
    CHECK_THROWS_WITH(parse_memory_size("", "--memory"), Catch::Contains("--memory"));
    CHECK_THROWS_WITH(parse_memory_size("abc", "--memory"), Catch::Contains("expected a number"));
    CHECK_THROWS_WITH(parse_memory_size("12X", "--memory"), Catch::Contains("unknown unit"));
    CHECK_THROWS_WITH(parse_memory_size("-1G", "--memory"), Catch::Contains("expected a number"));
    CHECK_THROWS_WITH(parse_memory_size("99999999999999999999", "--memory"), Catch::Contains("too large"));
    CHECK_THROWS_WITH(parse_memory_size("20000000000T", "--memory"), Catch::Contains("too large"));
}

TEST_CASE("sizes are formatted in the largest exact unit", "[units]") {
    CHECK(format_size(256 * MiB) == "256 MiB");
    CHECK(format_size(2 * GiB) == "2 GiB");
    CHECK(format_size(1536 * MiB) == "1536 MiB");
    CHECK(format_size(3) == "3 B");
}
