#pragma once
// Checks on the command lines the benches build.

#include <algorithm>
#include <string>
#include <vector>

namespace keel::bench::test {

// Whether `part` appears in `args` as consecutive arguments ("--memory", "512M").
inline bool contains_sequence(const std::vector<std::string>& args, const std::vector<std::string>& part) {
    return std::search(args.begin(), args.end(), part.begin(), part.end()) != args.end();
}

}  // namespace keel::bench::test
