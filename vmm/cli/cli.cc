#include "cli/cli.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <optional>
#include <sstream>

#include "common/error.h"
#include "common/units.h"
#include "keel/version.h"

namespace keel {

namespace {

struct RawRunOptions {
    std::string memory = "256M";
    std::string transport = "pci";
    std::vector<std::string> disks;
    std::vector<std::string> nets;
};

void add_run_options(CLI::App& run, VmConfig& config, RawRunOptions& raw, std::string& log_level) {
    run.add_option("--kernel", config.kernel_path,
                   "Guest kernel: a bzImage, or an uncompressed ELF vmlinux with a PVH entry note")
        ->required();
    run.add_option("--initrd", config.initrd_path, "Initial ramdisk (cpio archive, optionally compressed)");
    run.add_option("--cmdline", config.cmdline, "Kernel command line")->capture_default_str();
    run.add_option("--cpus", config.vcpus, "Number of vCPUs")->capture_default_str();
    run.add_option("--memory", raw.memory, "Guest RAM, e.g. 256M, 1G (a bare number means MiB)")
        ->capture_default_str();
    run.add_option("--disk", raw.disks,
                   "A virtio-blk disk: path=FILE[,readonly=on][,id=NAME][,serial=STR][,io=uring|sync]. "
                   "Repeatable; the guest sees them as vda, vdb, ... in order")
        ->type_name("SPEC");
    run.add_option("--net", raw.nets,
                   "A virtio-net NIC on a TAP interface: tap=NAME[,mac=MAC][,id=ID] opens (or, with "
                   "CAP_NET_ADMIN, creates) TAP NAME; fd=N[,mac=MAC][,id=ID] uses an open TAP fd "
                   "(IFF_TAP|IFF_NO_PI|IFF_VNET_HDR). Repeatable; without mac= each NIC gets a stable "
                   "locally administered one")
        ->type_name("SPEC");
    run.add_flag("--rng", config.rng, "A virtio-rng device fed from the host's getrandom()");
    run.add_option("--transport", raw.transport, "How virtio devices attach: pci (virtio-pci, MSI-X) or mmio")
        ->check(CLI::IsMember({"pci", "mmio"}))
        ->capture_default_str();
    run.add_flag("--stats", config.print_stats,
                 "When the guest exits, print boot phases, VM exits and memory overhead to stderr");
    run.add_option("--stats-json", config.stats_json_path, "Write the same statistics as JSON to FILE");
    run.add_option("--log-level", log_level, "error, warn, info, debug or trace")
        ->check(CLI::IsMember({"error", "warn", "info", "debug", "trace", "off"}))
        ->capture_default_str();
    run.footer(
        "The guest's serial console (ttyS0) is this terminal. When stdin is a terminal it is in raw "
        "mode: Ctrl-A x quits, Ctrl-A h shows the console escapes.\n"
        "keel exits 0 when the guest powers off or reboots.");
}

std::string one_line(std::string text) {
    std::replace(text.begin(), text.end(), '\n', ' ');
    while (!text.empty() && text.back() == ' ') text.pop_back();
    return text;
}

constexpr const char* kBenchHelp =
    "keel bench: measure what a VM costs\n"
    "Usage: keel bench boot [BENCH-OPTIONS] RUN-OPTIONS...\n"
    "\n"
    "keel bench boot boots the guest N times, each in a fresh keel process started like 'keel run'\n"
    "(stdin /dev/null, the console into a log file), and reports min/median/max of every boot\n"
    "phase from the launch of the process (process start, KVM ready, memory ready, kernel loaded,\n"
    "first KVM_RUN, the guest's boot-timer marks, guest stopped, process exit), VM exits by\n"
    "reason, and the VMM's memory overhead (RSS/PSS without guest RAM) by kind.\n"
    "\n"
    "BENCH-OPTIONS:\n"
    "  --runs N            boots (default 10)\n"
    "  --json FILE         also write the report, with every run's figures, as JSON\n"
    "  --svg FILE          also draw the boot timeline and the memory breakdown as SVG\n"
    "  --timeout SECONDS   a run that takes longer is killed and the bench fails (default 300)\n"
    "RUN-OPTIONS are those of 'keel run' (see 'keel run --help'); --kernel is required. The guest\n"
    "must power off by itself: keel's test guest does (guest-images/).\n";

CliOutcome cli_error(std::string message) {
    CliOutcome outcome;
    outcome.exit_code = 2;
    outcome.message_is_error = true;
    outcome.message = std::move(message);
    return outcome;
}

std::optional<unsigned> parse_unsigned(const std::string& text, unsigned min, unsigned max) {
    unsigned value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size() || value < min || value > max) return std::nullopt;
    return value;
}

// `keel bench ...`: the bench's own options are taken out, everything else
// must be a valid `keel run` command line and is handed to each run as is.
CliOutcome parse_bench(const std::vector<std::string>& args) {
    if (args.size() < 2 || args[1] == "--help" || args[1] == "-h") {
        CliOutcome outcome;
        outcome.message = kBenchHelp;
        outcome.exit_code = args.size() < 2 ? 2 : 0;
        return outcome;
    }
    if (args[1] != "boot") return cli_error("error: unknown benchmark '" + args[1] + "' (see 'keel bench --help')");
    bench::BootBenchOptions options;
    std::vector<std::string> run_args;
    for (size_t i = 2; i < args.size(); ++i) {
        std::string name = args[i];
        std::optional<std::string> value;
        if (const auto eq = name.find('='); name.starts_with("--") && eq != std::string::npos) {
            value = name.substr(eq + 1);
            name.resize(eq);
        }
        if (name == "--help" || name == "-h") {
            CliOutcome outcome;
            outcome.message = kBenchHelp;
            return outcome;
        }
        const bool ours = name == "--runs" || name == "--json" || name == "--svg" || name == "--timeout";
        if (!ours) {
            if (name == "--stats-json") {
                return cli_error("error: keel bench boot collects each run's statistics itself; use --json FILE");
            }
            run_args.push_back(args[i]);
            continue;
        }
        if (!value) {
            if (i + 1 >= args.size()) return cli_error("error: " + name + " needs a value (see 'keel bench --help')");
            value = args[++i];
        }
        if (name == "--runs") {
            const auto runs = parse_unsigned(*value, 1, 10000);
            if (!runs) return cli_error("error: --runs takes a number from 1 to 10000, not '" + *value + "'");
            options.runs = *runs;
        } else if (name == "--timeout") {
            const auto seconds = parse_unsigned(*value, 1, 86400);
            if (!seconds) return cli_error("error: --timeout takes seconds from 1 to 86400, not '" + *value + "'");
            options.timeout_seconds = *seconds;
        } else if (value->empty()) {
            return cli_error("error: " + name + " needs a file name");
        } else {
            (name == "--json" ? options.json_path : options.svg_path) = *value;
        }
    }
    std::vector<std::string> as_run{"run"};
    as_run.insert(as_run.end(), run_args.begin(), run_args.end());
    CliOutcome outcome = parse_command_line(as_run);
    if (outcome.command != CliCommand::Run) {
        if (!outcome.message_is_error) return cli_error("error: keel bench boot: --help is 'keel bench --help'");
        return outcome;
    }
    options.run_args = std::move(run_args);
    options.setup.kernel = outcome.config.kernel_path;
    options.setup.initrd = outcome.config.initrd_path;
    options.setup.vcpus = outcome.config.vcpus;
    options.setup.memory_mib = outcome.config.memory_bytes >> 20;
    options.setup.transport = outcome.config.transport == VirtioTransportKind::Mmio ? "mmio" : "pci";
    outcome.bench_boot = std::move(options);
    outcome.command = CliCommand::BenchBoot;
    return outcome;
}

}  // namespace

CliOutcome parse_command_line(const std::vector<std::string>& args) {
    if (!args.empty() && args.front() == "bench") return parse_bench(args);
    CliOutcome outcome;
    CLI::App app("keel: a small, fast virtual machine monitor for Linux KVM", "keel");
    app.set_version_flag("--version,-V", std::string("keel ") + kVersion);
    app.require_subcommand(1);
    app.footer("Run 'keel run --help' for the options of a command.");
    RawRunOptions raw;
    CLI::App* run = app.add_subcommand("run", "Boot a Linux guest with its serial console on this terminal");
    add_run_options(*run, outcome.config, raw, outcome.log_level);
    // Parsed by parse_bench() before CLI11 sees it; listed here for --help.
    app.add_subcommand("bench", "Measure boots: 'keel bench boot' (see 'keel bench --help')");

    // CLI11 reports a missing subcommand before an unknown option; name the
    // option instead, which is what the user got wrong.
    if (!args.empty() && args.front().starts_with("-") && args.front() != "--help" && args.front() != "-h" &&
        args.front() != "--version" && args.front() != "-V") {
        outcome.exit_code = 2;
        outcome.message_is_error = true;
        outcome.message = "error: unknown option '" + args.front() + "' (see 'keel --help')";
        return outcome;
    }
    // CLI11 wants argv order reversed when given a vector.
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    try {
        app.parse(reversed);
    } catch (const CLI::CallForHelp&) {
        const bool for_run = !args.empty() && args.front() == "run";
        outcome.message = for_run ? run->help() : app.help();
        return outcome;
    } catch (const CLI::CallForVersion&) {
        outcome.message = std::string("keel ") + kVersion + "\n";
        return outcome;
    } catch (const CLI::ParseError& e) {
        if (args.empty()) {
            outcome.message = app.help();
            outcome.exit_code = 2;
            return outcome;
        }
        outcome.exit_code = 2;
        outcome.message_is_error = true;
        outcome.message = "error: " + one_line(e.what()) + " (see 'keel " +
                          (!args.empty() && args.front() == "run" ? "run " : "") + "--help')";
        return outcome;
    }
    try {
        outcome.config.memory_bytes = parse_memory_size(raw.memory, "--memory");
        outcome.config.transport = raw.transport == "mmio" ? VirtioTransportKind::Mmio : VirtioTransportKind::Pci;
        for (const auto& spec : raw.disks) outcome.config.disks.push_back(block::parse_disk_option(spec));
        for (const auto& spec : raw.nets) outcome.config.nets.push_back(net::parse_net_option(spec));
    } catch (const Error& e) {
        outcome.exit_code = 2;
        outcome.message_is_error = true;
        outcome.message = std::string("error: ") + e.what();
        return outcome;
    }
    outcome.command = CliCommand::Run;
    return outcome;
}

}  // namespace keel
