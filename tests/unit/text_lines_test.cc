#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "common/text_lines.h"

using namespace keel;

namespace {

std::vector<std::string> all_lines(std::string_view text) {
    std::vector<std::string> out;
    TextLines lines(text);
    while (const auto line = lines.next()) out.emplace_back(*line);
    return out;
}

}  // namespace

TEST_CASE("text is walked line by line, a last line without newline included", "[text]") {
    CHECK(all_lines("").empty());
    CHECK(all_lines("\n") == std::vector<std::string>{""});
    CHECK(all_lines("a\nbc\n") == std::vector<std::string>{"a", "bc"});
    CHECK(all_lines("a\n\nb") == std::vector<std::string>{"a", "", "b"});
    const std::string with_nul("x\0y\nz", 5);
    CHECK(all_lines(with_nul) == std::vector<std::string>{std::string("x\0y", 3), "z"});
}
