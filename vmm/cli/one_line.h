#pragma once

#include <algorithm>
#include <string>

namespace keel {

// An error message as one line: keel promises a single `error:` line, and
// messages may quote the user's arguments or file contents, newlines and all.
[[nodiscard]] inline std::string one_line(std::string text) {
    std::replace(text.begin(), text.end(), '\n', ' ');
    while (!text.empty() && text.back() == ' ') text.pop_back();
    return text;
}

}  // namespace keel
