#include "bench/process_probe.h"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/text_lines.h"

namespace keel::bench {

namespace fs = std::filesystem;

namespace {

bool parse_hex(std::string_view text, uint64_t& out) {
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out, 16);
    return ec == std::errc() && ptr == text.data() + text.size();
}

std::string read_whole(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

std::vector<AddressRange> guest_ram_mappings(std::string_view smaps, uint64_t guest_memory_bytes) {
    std::vector<AddressRange> ranges;
    if (guest_memory_bytes == 0) return ranges;
    TextLines lines(smaps);
    while (const auto next_line = lines.next()) {
        const std::string_view line = *next_line;
        // A mapping's header: "start-end perms offset dev inode [path]"; six
        // fields or five (anonymous: no path).
        const auto dash = line.find('-');
        const auto space = line.find(' ');
        if (dash == std::string_view::npos || space == std::string_view::npos || dash > space) continue;
        uint64_t start = 0;
        uint64_t end = 0;
        if (!parse_hex(line.substr(0, dash), start) || !parse_hex(line.substr(dash + 1, space - dash - 1), end))
            continue;
        if (end <= start) continue;
        std::istringstream fields{std::string(line.substr(space))};
        std::string perms, offset, device, inode, path;
        fields >> perms >> offset >> device >> inode >> path;
        if (inode.empty() || !path.empty() || inode != "0") continue;
        if (end - start >= guest_memory_bytes / 2) ranges.emplace_back(start, end);
    }
    return ranges;
}

std::vector<pid_t> process_tree(pid_t pid) {
    // ppid of every process, then a walk down from `pid`.
    std::vector<std::pair<pid_t, pid_t>> parent_of;  // (pid, ppid)
    std::error_code error;
    for (const auto& entry : fs::directory_iterator("/proc", error)) {
        const std::string name = entry.path().filename().string();
        pid_t each = 0;
        if (std::from_chars(name.data(), name.data() + name.size(), each).ec != std::errc()) continue;
        const std::string stat = read_whole("/proc/" + name + "/stat");
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        const auto close = stat.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream rest(stat.substr(close + 1));
        std::string state;
        pid_t ppid = 0;
        if (rest >> state >> ppid) parent_of.emplace_back(each, ppid);
    }
    std::vector<pid_t> tree{pid};
    for (size_t i = 0; i < tree.size(); ++i) {
        for (const auto& [each, ppid] : parent_of) {
            if (ppid == tree[i]) tree.push_back(each);
        }
    }
    return tree;
}

TreeMemory measure_process_tree(pid_t pid, uint64_t guest_memory_bytes) {
    TreeMemory total;
    for (const pid_t each : process_tree(pid)) {
        const std::string dir = "/proc/" + std::to_string(each);
        const std::string smaps = read_whole(dir + "/smaps");
        if (smaps.empty()) continue;  // gone, or a kernel thread
        std::error_code error;
        const std::string exe = fs::read_symlink(dir + "/exe", error).string();
        const MemoryBreakdown breakdown = classify_smaps(smaps, guest_ram_mappings(smaps, guest_memory_bytes), {}, exe);
        const MemoryKind overhead = breakdown.overhead();
        total.overhead.add(overhead.rss_kib, overhead.pss_kib);
        total.guest_ram.add(breakdown.guest_ram.rss_kib, breakdown.guest_ram.pss_kib);
        ++total.processes;
    }
    return total;
}

std::vector<std::string> kvm_debugfs_vm_dirs(const std::vector<std::string>& entries, pid_t pid) {
    const std::string prefix = std::to_string(pid) + "-";
    std::vector<std::string> dirs;
    for (const auto& name : entries) {
        if (!name.starts_with(prefix) || name.size() == prefix.size()) continue;
        const std::string_view fd = std::string_view(name).substr(prefix.size());
        unsigned value = 0;
        const auto [ptr, ec] = std::from_chars(fd.data(), fd.data() + fd.size(), value);
        if (ec == std::errc() && ptr == fd.data() + fd.size()) dirs.push_back(name);
    }
    return dirs;
}

std::optional<uint64_t> kvm_exits_of(pid_t pid, const std::string& debugfs_kvm) {
    std::error_code error;
    std::vector<std::string> entries;
    for (const auto& entry : fs::directory_iterator(debugfs_kvm, error))
        entries.push_back(entry.path().filename().string());
    if (error) return std::nullopt;
    const auto dirs = kvm_debugfs_vm_dirs(entries, pid);
    if (dirs.empty()) return std::nullopt;
    uint64_t exits = 0;
    for (const auto& dir : dirs) {
        const std::string text = read_whole(debugfs_kvm + "/" + dir + "/exits");
        uint64_t value = 0;
        const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc()) return std::nullopt;
        exits += value;
    }
    return exits;
}

}  // namespace keel::bench
