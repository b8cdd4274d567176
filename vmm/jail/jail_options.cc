#include "jail/jail_options.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <set>

#include "common/error.h"

namespace keel::jail {

namespace {

constexpr size_t kMaxIdLength = 64;

bool is_id_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

bool is_cgroup_file_char(char c) {
    return (c >= 'a' && c <= 'z') || c == '_' || c == '.';
}

std::optional<uint64_t> parse_decimal(std::string_view text) {
    uint64_t value = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, error] = std::from_chars(text.data(), end, value);
    if (text.empty() || error != std::errc() || ptr != end) return std::nullopt;
    return value;
}

}  // namespace

void validate_id(std::string_view id) {
    if (id.empty() || id.size() > kMaxIdLength || id.front() == '-' || !std::all_of(id.begin(), id.end(), is_id_char)) {
        throw Error("--id '" + std::string(id) +
                    "': must be 1-64 characters of A-Z a-z 0-9 and '-', not starting with '-'");
    }
}

uint32_t parse_numeric_id(std::string_view text, std::string_view option) {
    const auto value = parse_decimal(text);
    if (!value || *value >= std::numeric_limits<uint32_t>::max()) {
        throw Error(std::string(option) + " '" + std::string(text) + "': must be a number from 0 to 4294967294");
    }
    return static_cast<uint32_t>(*value);
}

CgroupSetting parse_cgroup_setting(std::string_view text) {
    const auto equals = text.find('=');
    const auto fail = [&](const std::string& why) -> CgroupSetting {
        throw Error("--cgroup '" + std::string(text) + "': " + why);
    };
    if (equals == std::string_view::npos) return fail("must be FILE=VALUE, e.g. memory.max=512M");
    CgroupSetting setting{std::string(text.substr(0, equals)), std::string(text.substr(equals + 1))};
    const auto& file = setting.file;
    const auto dot = file.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == file.size() ||
        !std::all_of(file.begin(), file.end(), is_cgroup_file_char) || file.find("..") != std::string::npos) {
        return fail("'" + file + "' is not a cgroup v2 interface file such as memory.max, cpu.max or pids.max");
    }
    if (file.starts_with("cgroup.")) return fail("the cgroup core files (cgroup.*) are keel jail's own");
    if (setting.value.empty()) return fail("no value");
    if (setting.value.find('\n') != std::string::npos) return fail("the value must be one line");
    return setting;
}

void apply_resource_limit(std::string_view text, ResourceLimits& limits) {
    const auto equals = text.find('=');
    const auto name = text.substr(0, equals);
    const auto value = equals == std::string_view::npos ? std::nullopt : parse_decimal(text.substr(equals + 1));
    if (!value) {
        throw Error("--resource-limit '" + std::string(text) + "': must be fsize=N or no-file=N (N a number)");
    }
    if (name == "fsize") {
        limits.file_size = *value;
    } else if (name == "no-file") {
        if (*value < 16) throw Error("--resource-limit '" + std::string(text) + "': keel needs at least 16 files");
        limits.open_files = *value;
    } else {
        throw Error("--resource-limit '" + std::string(text) + "': unknown limit '" + std::string(name) +
                    "' (fsize or no-file)");
    }
}

void validate_options(const JailOptions& options) {
    validate_id(options.id);
    if (!options.chroot_base.starts_with("/")) {
        throw Error("--chroot-base '" + options.chroot_base + "': must be an absolute path");
    }
    if (!options.cgroup_root.starts_with("/")) {
        throw Error("--cgroup-root '" + options.cgroup_root + "': must be an absolute path");
    }
    std::set<std::string> files;
    for (const auto& setting : options.cgroups) {
        if (!files.insert(setting.file).second) throw Error("--cgroup: '" + setting.file + "' given twice");
    }
}

std::string jail_dir(const JailOptions& options) {
    std::string base = options.chroot_base;
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    return (base == "/" ? "" : base) + "/keel/" + options.id;
}

std::string jail_root(const JailOptions& options) {
    return jail_dir(options) + "/root";
}

}  // namespace keel::jail
