#include "bench/report_table.h"

#include <cstdio>

namespace keel::bench {

std::string figure_table(const std::vector<std::string>& columns, const std::vector<TableRow>& rows, int name_width,
                         int cell_width) {
    std::string out;
    char line[512];
    std::snprintf(line, sizeof line, "\n%-*s", name_width, "median [min-max]");
    out += line;
    for (const auto& column : columns) {
        std::snprintf(line, sizeof line, " %*s", cell_width, column.c_str());
        out += line;
    }
    out += "\n";
    for (const auto& row : rows) {
        std::snprintf(line, sizeof line, "%-*s", name_width, row.name.c_str());
        out += line;
        for (const auto& cell : row.cells) {
            std::snprintf(line, sizeof line, " %*s", cell_width, cell.c_str());
            out += line;
        }
        out += "\n";
    }
    return out;
}

}  // namespace keel::bench
