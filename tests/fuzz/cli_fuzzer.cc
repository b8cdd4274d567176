// libFuzzer target: the fuzz bytes are keel's argv (NUL-separated
// arguments, at most 64), given to parse_command_line() in-process as main
// does. It promises never to throw and never to print; checks:
//   - no exception escapes (libFuzzer reports one as a crash);
//   - an error is an exit status 2 with a one-line message starting
//     "error:" (or "jail:"), never an empty one; help and version exit 0
//     (or 2 for help because arguments are missing) and are not errors;
//   - Run means exit status 0, no message, and either a VM (with a kernel)
//     or an API socket to describe one; Bench carries exactly the arguments
//     after "bench"; Jail carries a run command line.
//
// The parser opens only --config-file's file. So that no input can make it
// read a device or FIFO, every '/' in an argument becomes '_' — except in
// the argument "@CONFIG", which becomes the path of a valid config file
// written at start-up, and "@BAD", an invalid one.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/cli.h"
#include "fuzz_input.h"

namespace {

using keel::CliCommand;
using keel::fuzz::check;

struct Files {
    Files() {
        char dir_template[] = "/tmp/keel-cli-fuzz-XXXXXX";
        const char* dir = ::mkdtemp(dir_template);
        check(dir != nullptr);
        config = std::string(dir) + "/vm.json";
        bad = std::string(dir) + "/bad.json";
        std::ofstream(config) << R"({"boot-source": {"kernel_image_path": "/dev/null", "boot_args": "console=ttyS0"},
 "drives": [{"drive_id": "rootfs", "is_root_device": true, "path_on_host": "/dev/null", "is_read_only": true}],
 "machine-config": {"vcpu_count": 2, "mem_size_mib": 256}, "logger": {"level": "Info"}})";
        std::ofstream(bad) << R"({"boot-source": {}, "drives": 7})";
    }
    std::string config;
    std::string bad;
};

const Files& files() {
    static const Files f;
    return f;
}

std::string sanitize(std::string arg) {
    if (arg == "@CONFIG") return files().config;
    if (arg == "@BAD") return files().bad;
    for (char& c : arg) {
        if (c == '/') c = '_';
    }
    return arg;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    std::vector<std::string> args;
    size_t start = 0;
    while (start <= text.size() && args.size() < 64) {
        const size_t end = std::min(text.find('\0', start), text.size());
        args.push_back(sanitize(std::string(text.substr(start, end - start))));
        start = end + 1;
    }
    if (size == 0) args.clear();

    const keel::CliOutcome outcome = keel::parse_command_line(args);
    switch (outcome.command) {
        case CliCommand::Exit:
            if (outcome.message_is_error) {
                check(outcome.exit_code == 2);
                check(outcome.message.starts_with("error:") || outcome.message.starts_with("jail:"));
                check(outcome.message.find('\n') == std::string::npos);
            } else {
                check(outcome.exit_code == 0 || outcome.exit_code == 2);
                check(!outcome.message.empty());  // help or version
            }
            break;
        case CliCommand::Run:
            check(outcome.exit_code == 0 && outcome.message.empty() && !outcome.message_is_error);
            check(outcome.vm_given || !outcome.api_socket.empty());
            if (outcome.vm_given) check(!outcome.config.kernel_path.empty());
            break;
        case CliCommand::Bench:
            check(!args.empty() && args.front() == "bench");
            check(outcome.bench_args == std::vector<std::string>(args.begin() + 1, args.end()));
            break;
        case CliCommand::Jail:
            check(outcome.exit_code == 0 && !outcome.message_is_error);
            check(!outcome.jail.run.args.empty());
            break;
    }
    return 0;
}
