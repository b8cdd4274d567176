#pragma once

#include <optional>
#include <string_view>

namespace keel {

// Walks a text (a /proc file, a trace) line by line without copying it:
// while (const auto line = lines.next()) { ... *line ... }. Lines come without
// their '\n'; a last line without one still counts, an empty text has none.
class TextLines {
public:
    explicit TextLines(std::string_view text) : m_text(text) {}

    [[nodiscard]] std::optional<std::string_view> next() {
        if (m_pos >= m_text.size()) return std::nullopt;
        auto eol = m_text.find('\n', m_pos);
        if (eol == std::string_view::npos) eol = m_text.size();
        const std::string_view line = m_text.substr(m_pos, eol - m_pos);
        m_pos = eol + 1;
        return line;
    }

private:
    std::string_view m_text;
    size_t m_pos = 0;
};

}  // namespace keel
