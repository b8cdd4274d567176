#include "bench/strace_summary.h"

#include <charconv>
#include <unordered_map>
#include <vector>

#include "common/text_lines.h"

namespace keel::bench {
namespace {

struct CallLine {
    int64_t tid = 0;
    std::string_view name;
    std::string_view rest;  // after the name: "(args) = ret" or " resumed>...) = ret"
    bool resumed = false;   // "<... name resumed>": the second half of an earlier call
};

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

// "1234  ioctl(12, KVM_RUN, 0) = 0" and "1234  <... futex resumed>) = 0".
// strace's notes ("--- SIGCHLD ...", "+++ exited ...") are not calls.
enum class LineKind : uint8_t { Call, Note, Unparsed };

LineKind parse_line(std::string_view line, CallLine& call) {
    size_t pos = 0;
    while (pos < line.size() && line[pos] >= '0' && line[pos] <= '9') ++pos;
    if (pos == 0 || std::from_chars(line.data(), line.data() + pos, call.tid).ec != std::errc()) {
        return LineKind::Unparsed;
    }
    while (pos < line.size() && line[pos] == ' ') ++pos;
    std::string_view body = line.substr(pos);
    if (body.starts_with("---") || body.starts_with("+++")) return LineKind::Note;
    if (body.starts_with("<... ")) {
        body.remove_prefix(5);
        size_t end = 0;
        while (end < body.size() && is_name_char(body[end])) ++end;
        if (end == 0 || !body.substr(end).starts_with(" resumed>")) return LineKind::Unparsed;
        call.name = body.substr(0, end);
        call.rest = body.substr(end);
        call.resumed = true;
        return LineKind::Call;
    }
    size_t end = 0;
    while (end < body.size() && is_name_char(body[end])) ++end;
    if (end == 0 || end >= body.size() || body[end] != '(') return LineKind::Unparsed;
    call.name = body.substr(0, end);
    call.rest = body.substr(end);
    call.resumed = false;
    return LineKind::Call;
}

// The return value of a finished call: the number after the last " = ".
bool return_value(std::string_view rest, int64_t& value) {
    const auto eq = rest.rfind(") = ");
    if (eq == std::string_view::npos) return false;
    const std::string_view text = rest.substr(eq + 4);
    return std::from_chars(text.data(), text.data() + text.size(), value).ec == std::errc();
}

bool creates_process(std::string_view name) {
    return name == "clone" || name == "clone3" || name == "fork" || name == "vfork";
}

struct ThreadLog {
    std::vector<std::string_view> calls;  // in order
    size_t window_start = SIZE_MAX;       // index of the matching call, when this thread made it
    int64_t parent = 0;                   // who created it, and when (its index there)
    size_t parent_index = 0;
};

}  // namespace

StraceSummary summarize_strace(std::string_view text, const StraceWindow& window) {
    StraceSummary summary;
    std::unordered_map<int64_t, ThreadLog> threads;
    std::vector<int64_t> order;  // threads in order of first appearance
    bool global_window = false;
    TextLines lines(text);
    while (const auto next_line = lines.next()) {
        const std::string_view line = *next_line;
        if (line.empty()) continue;
        CallLine call;
        const LineKind kind = parse_line(line, call);
        if (kind == LineKind::Unparsed) {
            ++summary.unparsed_lines;
            continue;
        }
        if (kind == LineKind::Note) continue;
        auto [it, inserted] = threads.try_emplace(call.tid);
        if (inserted) order.push_back(call.tid);
        ThreadLog& log = it->second;
        if (!call.resumed) {
            const std::string name(call.name);
            ++summary.all_calls[name];
            const bool matches =
                call.name == window.syscall && call.rest.find(window.argument_text) != std::string_view::npos;
            if (window.kind == StraceWindow::Kind::FromFirstMatch) {
                if (matches) global_window = true;
                if (global_window) ++summary.window_calls[name];
            } else if (matches && log.window_start == SIZE_MAX) {
                log.window_start = log.calls.size();
            }
            log.calls.push_back(call.name);
        }
        int64_t child = 0;
        if (creates_process(call.name) && return_value(call.rest, child) && child > 0) {
            auto [child_it, child_new] = threads.try_emplace(child);
            if (child_new) order.push_back(child);
            // The call is already in the creator's list: it was made at size - 1.
            child_it->second.parent = call.tid;
            child_it->second.parent_index = log.calls.empty() ? 0 : log.calls.size() - 1;
        }
    }
    if (window.kind == StraceWindow::Kind::FromFirstMatch) {
        summary.window_found = global_window;
        return summary;
    }
    // A thread is in the payload's tree from its matching call on, or
    // wholly when its creator was in the tree when it created it.
    std::unordered_map<int64_t, size_t> start;
    const auto start_of = [&](auto&& self, int64_t tid, int depth) -> size_t {
        if (auto known = start.find(tid); known != start.end()) return known->second;
        const ThreadLog& log = threads.at(tid);
        size_t from = log.window_start;
        start[tid] = from;  // breaks a cycle of creators, which only odd input has
        if (log.parent != 0 && depth < 1000) {
            const size_t parent_from = self(self, log.parent, depth + 1);
            if (parent_from != SIZE_MAX && log.parent_index >= parent_from) from = 0;
        }
        start[tid] = from;
        return from;
    };
    for (const int64_t tid : order) {
        const size_t from = start_of(start_of, tid, 0);
        if (from == SIZE_MAX) continue;
        summary.window_found = true;
        const ThreadLog& log = threads.at(tid);
        for (size_t i = from; i < log.calls.size(); ++i) ++summary.window_calls[std::string(log.calls[i])];
    }
    return summary;
}

}  // namespace keel::bench
