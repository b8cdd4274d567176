#include "guest_files.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <filesystem>
#include <stdexcept>

#include "process.h"

namespace keel::test {

namespace {

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
}

// Runs a guest-images script and returns the directory it prints last.
std::string script_dir(const std::string& script, const std::vector<std::string>& args) {
    std::vector<std::string> argv{std::string(KEEL_SOURCE_DIR) + "/guest-images/" + script};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessOptions options;
    options.timeout = std::chrono::seconds(600);
    const auto result = run_process(argv, options);
    if (result.exit_code != 0) return {};
    std::string out = trim(result.out);
    const auto nl = out.rfind('\n');
    return nl == std::string::npos ? out : out.substr(nl + 1);
}

}  // namespace

std::string keel_binary() { return env_or("KEEL_BIN", KEEL_BINARY_PATH); }

GuestImage stock_guest() {
    std::string dir = env_or("KEEL_STOCK_GUEST_DIR", "");
    if (dir.empty()) dir = script_dir("build-stock-guest", {});
    if (dir.empty() || !std::filesystem::exists(dir + "/vmlinuz")) {
        throw std::runtime_error("the stock test guest is missing: run guest-images/build-stock-guest");
    }
    return {dir + "/vmlinuz", "", dir + "/initrd.img", "stock"};
}

GuestImage minimal_guest() {
    std::string dir = env_or("KEEL_MINIMAL_KERNEL_DIR", "");
    if (dir.empty()) dir = script_dir("build-minimal-kernel", {"--if-cached"});
    if (dir.empty() || !std::filesystem::exists(dir + "/bzImage")) return {};
    const auto stock = stock_guest();
    return {dir + "/bzImage", dir + "/vmlinux", stock.initrd, "minimal"};
}

uint64_t read_number_file(const std::string& path) {
    std::ifstream file(path);
    uint64_t number = 0;
    return file >> number ? number : 0;
}

std::string scratch_dir() {
    std::string templ = std::filesystem::temp_directory_path().string() + "/keel-test-XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    return templ;
}

ScratchDir::~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
}

}  // namespace keel::test
