#pragma once
// What every bad command line must give: exit status 2, nothing run, and one
// line that starts with `prefix` (and names `expected_part`, when given).

#include <catch2/catch.hpp>

#include <string>

#include "cli/cli.h"

namespace keel::test {

inline void check_one_line_usage_error(const CliOutcome& out, const std::string& prefix = "error: ",
                                       const std::string& expected_part = "") {
    INFO(out.message);
    CHECK(out.command == CliCommand::Exit);
    CHECK(out.exit_code == 2);
    CHECK(out.message_is_error);
    CHECK(out.message.rfind(prefix, 0) == 0);
    CHECK(out.message.find('\n') == std::string::npos);
    CHECK(out.message.find(expected_part) != std::string::npos);
}

}  // namespace keel::test
