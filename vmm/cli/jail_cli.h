#pragma once

#include <string>
#include <vector>

#include "cli/cli.h"

namespace keel {

// Parses the arguments after `keel jail`: the jail's options, "--", then
// keel run's arguments, which keel's own run parser reads (so that the jail
// knows which of them name host files). Never throws and never prints.
[[nodiscard]] CliOutcome parse_jail_command_line(const std::vector<std::string>& args);

}  // namespace keel
