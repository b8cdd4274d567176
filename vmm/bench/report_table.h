#pragma once
// What the benches' text reports share: the warning for an emulated host and
// the table of figures, one column per system.

#include <string>
#include <utility>
#include <vector>

namespace keel::bench {

// Printed under the header of every report made on an emulated host.
inline constexpr const char* kEmulatedHostWarning =
    "THE HOST IS EMULATED (QEMU TCG): every time below is emulated and means nothing alone; only\n"
    "ratios between systems measured in this run, and the counts, mean anything.\n";

struct TableRow {
    std::string name;
    std::vector<std::string> cells;  // one per column
};

// A blank line, a header ("median [min-max]" then the column names, right
// aligned), and one line per row: its name, then its cells.
[[nodiscard]] std::string figure_table(const std::vector<std::string>& columns, const std::vector<TableRow>& rows,
                                       int name_width, int cell_width);

}  // namespace keel::bench
