#pragma once

#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace keel {

// One "key=value" item of a device option such as --disk or --net.
using OptionItem = std::pair<std::string_view, std::string_view>;

// Splits the value of a device option ("path=a.img,readonly=on") into its
// items, in order, checking the shape every such option shares; an empty
// text has no items. Throws keel::Error "<flag>: ..." naming the offending
// item for: an empty item (two commas in a row, a comma at the end), an
// item without '=', a key not in `keys`, a key given twice, an empty value.
// The views point into `text`.
[[nodiscard]] std::vector<OptionItem> split_option_list(std::string_view text, std::string_view flag,
                                                        std::span<const std::string_view> keys);

// The ids that name devices in logs, stats and the API: 1-32 characters of
// A-Z a-z 0-9 _ -.
[[nodiscard]] bool is_valid_device_id(std::string_view id);

}  // namespace keel
