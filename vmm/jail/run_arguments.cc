#include "jail/run_arguments.h"

#include <optional>
#include <string_view>

#include "common/error.h"

namespace keel::jail {

namespace {

// "--disk" matches "--disk" (value in the next argument) and "--disk=VALUE".
struct OptionMatch {
    bool inline_value = false;
};

std::optional<OptionMatch> match_option(std::string_view arg, std::string_view option) {
    if (arg == option) return OptionMatch{false};
    if (arg.starts_with(option) && arg.substr(option.size()).starts_with("=")) return OptionMatch{true};
    return std::nullopt;
}

// A --disk spec with its path= item replaced (keel's parser splits on ',',
// so a path never holds one).
std::string replace_disk_path(const std::string& spec, const std::string& expected, const std::string& jail_path) {
    std::string result;
    bool replaced = false;
    size_t start = 0;
    while (start <= spec.size()) {
        const auto comma = spec.find(',', start);
        const auto end = comma == std::string::npos ? spec.size() : comma;
        std::string item = spec.substr(start, end - start);
        if (item.starts_with("path=")) {
            if (item.substr(5) != expected) break;
            item = "path=" + jail_path;
            replaced = true;
        }
        result += (result.empty() && start == 0 ? "" : ",") + item;
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    if (!replaced) throw Error("--disk '" + spec + "': its path= is not the one keel's run parser read");
    return result;
}

}  // namespace

RunPlan plan_run_arguments(const std::vector<std::string>& args, const NamedFiles& named) {
    RunPlan plan;
    if (!named.kernel.empty()) plan.files.push_back({named.kernel, "/kernel", true});
    if (!named.initrd.empty()) plan.files.push_back({named.initrd, "/initrd", true});
    for (size_t i = 0; i < named.disks.size(); ++i) {
        plan.files.push_back({named.disks[i].path, "/disk" + std::to_string(i), named.disks[i].read_only});
    }
    size_t disk = 0;
    // Each file option's value, mapped to what replaces it.
    const auto rewrite = [&](std::string_view option, const std::string& value) -> std::string {
        if (option == "--kernel") return "/kernel";
        if (option == "--initrd") return "/initrd";
        if (disk >= named.disks.size()) throw Error("--disk: more --disk options than keel's run parser read");
        const auto jail_path = "/disk" + std::to_string(disk);
        return replace_disk_path(value, named.disks[disk++].path, jail_path);
    };
    for (size_t i = 0; i < args.size(); ++i) {
        const auto& arg = args[i];
        if (arg == "--") {
            plan.args.insert(plan.args.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
            break;
        }
        bool handled = false;
        for (std::string_view option : {"--kernel", "--initrd", "--disk"}) {
            const auto match = match_option(arg, option);
            if (!match) continue;
            handled = true;
            if (match->inline_value) {
                plan.args.push_back(std::string(option) + "=" + rewrite(option, arg.substr(option.size() + 1)));
            } else if (i + 1 < args.size()) {
                plan.args.push_back(arg);
                plan.args.push_back(rewrite(option, args[++i]));
            } else {
                throw Error(std::string(option) + ": no value");
            }
            break;
        }
        if (!handled) plan.args.push_back(arg);
    }
    if (disk != named.disks.size()) throw Error("--disk: fewer --disk options than keel's run parser read");
    return plan;
}

}  // namespace keel::jail
