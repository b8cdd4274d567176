#include "core/memory_overhead.h"

#include <pthread.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <limits.h>
#include <mutex>
#include <sstream>

#include "common/text_lines.h"

namespace keel {

namespace {

std::mutex g_stacks_mutex;
std::vector<AddressRange> g_thread_stacks;

struct Mapping {
    uint64_t start = 0;
    uint64_t end = 0;
    std::string_view path;
    uint64_t rss = 0;
    uint64_t pss = 0;
};

bool parse_hex(std::string_view text, uint64_t& out) {
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out, 16);
    return ec == std::errc() && ptr == text.data() + text.size();
}

// "55d0c-55d0e rw-p 00000000 00:00 0   [heap]" -> start, end, path.
bool parse_header(std::string_view line, Mapping& m) {
    const auto dash = line.find('-');
    const auto space = line.find(' ');
    if (dash == std::string_view::npos || space == std::string_view::npos || dash > space) return false;
    if (!parse_hex(line.substr(0, dash), m.start) || !parse_hex(line.substr(dash + 1, space - dash - 1), m.end)) {
        return false;
    }
    // The path is the sixth whitespace-separated field and may contain spaces.
    size_t pos = space;
    for (int field = 0; field < 4; ++field) {
        pos = line.find_first_not_of(' ', pos);
        if (pos == std::string_view::npos) return true;
        pos = line.find(' ', pos);
        if (pos == std::string_view::npos) return true;
    }
    pos = line.find_first_not_of(' ', pos);
    m.path = pos == std::string_view::npos ? std::string_view{} : line.substr(pos);
    return true;
}

uint64_t parse_kib_field(std::string_view line) {
    // "Rss:                 123 kB"
    const auto colon = line.find(':');
    const auto digits = line.find_first_of("0123456789", colon);
    if (digits == std::string_view::npos) return 0;
    uint64_t value = 0;
    std::from_chars(line.data() + digits, line.data() + line.size(), value);
    return value;
}

bool overlaps(const Mapping& m, const std::vector<AddressRange>& ranges) {
    for (const auto& [first, last] : ranges) {
        if (m.start < last && first < m.end) return true;
    }
    return false;
}

MemoryKind& kind_of(MemoryBreakdown& b, const Mapping& m, const std::vector<AddressRange>& guest_ram,
                    const std::vector<AddressRange>& stacks, std::string_view exe) {
    if (overlaps(m, guest_ram)) return b.guest_ram;
    if (m.path == "[stack]" || overlaps(m, stacks)) return b.stacks;
    if (m.path == "[heap]" || m.path.empty()) return b.heap;
    if (m.path.starts_with("anon_inode:kvm")) return b.kvm;
    if (!exe.empty() && m.path == exe) return b.binary;
    if (m.path.starts_with("/")) return b.libraries;
    return b.other;
}

}  // namespace

MemoryKind MemoryBreakdown::overhead() const {
    MemoryKind total;
    for (const auto* k : {&binary, &libraries, &heap, &stacks, &kvm, &other}) total.add(k->rss_kib, k->pss_kib);
    return total;
}

MemoryBreakdown classify_smaps(std::string_view smaps, const std::vector<AddressRange>& guest_ram,
                               const std::vector<AddressRange>& thread_stacks, std::string_view exe_path) {
    MemoryBreakdown breakdown;
    Mapping current;
    bool have_mapping = false;
    const auto flush = [&] {
        if (have_mapping) kind_of(breakdown, current, guest_ram, thread_stacks, exe_path).add(current.rss, current.pss);
    };
    TextLines lines(smaps);
    while (const auto next_line = lines.next()) {
        const std::string_view line = *next_line;
        if (line.starts_with("Rss:")) {
            current.rss += parse_kib_field(line);
        } else if (line.starts_with("Pss:")) {
            current.pss += parse_kib_field(line);
        } else if (line.starts_with("Private_Hugetlb:") || line.starts_with("Shared_Hugetlb:")) {
            // hugetlbfs pages (guest RAM with --hugepages) are not in Rss or Pss.
            const uint64_t kib = parse_kib_field(line);
            current.rss += kib;
            current.pss += kib;
        } else {
            Mapping next;
            if (line.find(':') != std::string_view::npos && line.find('-') > line.find(':')) continue;  // other field
            if (parse_header(line, next)) {
                flush();
                current = next;
                have_mapping = true;
            }
        }
    }
    flush();
    return breakdown;
}

MemoryBreakdown measure_memory(const std::vector<AddressRange>& guest_ram) {
    std::ifstream file("/proc/self/smaps");
    std::stringstream text;
    text << file.rdbuf();
    char exe[PATH_MAX] = {};
    const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    const std::string exe_path = n > 0 ? std::string(exe, static_cast<size_t>(n)) : std::string();
    std::vector<AddressRange> stacks;
    {
        std::lock_guard lock(g_stacks_mutex);
        stacks = g_thread_stacks;
    }
    return classify_smaps(text.str(), guest_ram, stacks, exe_path);
}

void register_current_thread_stack() {
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
    void* addr = nullptr;
    size_t size = 0;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
        const auto start = reinterpret_cast<uint64_t>(addr);
        std::lock_guard lock(g_stacks_mutex);
        g_thread_stacks.emplace_back(start, start + size);
    }
    pthread_attr_destroy(&attr);
}

}  // namespace keel
