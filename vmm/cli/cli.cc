#include "cli/cli.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <optional>
#include <sstream>

#include "api/config_file.h"
#include "cli/jail_cli.h"
#include "cli/one_line.h"
#include "common/error.h"
#include "common/units.h"
#include "keel/version.h"

namespace keel {

namespace {

struct RawRunOptions {
    std::string config_file;
    std::string api_socket;
    bool no_api = false;
    std::string memory = "256M";
    bool hugepages = false;
    bool thp = false;
    std::string transport = "pci";
    std::string seccomp{security::to_string(security::kDefaultSeccompMode)};
    std::vector<std::string> disks;
    std::vector<std::string> nets;
};

void add_run_options(CLI::App& run, VmConfig& config, RawRunOptions& raw, std::string& log_level) {
    std::vector<CLI::Option*> vm_options;
    vm_options.push_back(run.add_option(
        "--kernel", config.kernel_path, "Guest kernel: a bzImage, or an uncompressed ELF vmlinux with a PVH entry note"));
    vm_options.push_back(
        run.add_option("--initrd", config.initrd_path, "Initial ramdisk (cpio archive, optionally compressed)"));
    vm_options.push_back(run.add_option("--cmdline", config.cmdline, "Kernel command line")->capture_default_str());
    vm_options.push_back(run.add_option("--cpus", config.vcpus, "Number of vCPUs")->capture_default_str());
    vm_options.push_back(run.add_option("--memory", raw.memory, "Guest RAM, e.g. 256M, 1G (a bare number means MiB)")
                             ->capture_default_str());
    auto* hugepages = run.add_flag("--hugepages", raw.hugepages,
                                   "Back guest RAM with 2 MiB hugetlbfs pages, reserved from the host's pool "
                                   "(vm.nr_hugepages) at start; --memory must be a multiple of 2 MiB");
    auto* thp = run.add_flag("--thp", raw.thp,
                             "Let the host back guest RAM with transparent huge pages (MADV_HUGEPAGE)");
    hugepages->excludes(thp);
    vm_options.push_back(hugepages);
    vm_options.push_back(thp);
    vm_options.push_back(run.add_option("--disk", raw.disks,
                   "A virtio-blk disk: path=FILE[,readonly=on][,id=NAME][,serial=STR][,io=uring|sync]. "
                   "Repeatable; the guest sees them as vda, vdb, ... in order")
        ->type_name("SPEC"));
    vm_options.push_back(run.add_option("--net", raw.nets,
                   "A virtio-net NIC on a TAP interface: tap=NAME[,mac=MAC][,id=ID] opens (or, with "
                   "CAP_NET_ADMIN, creates) TAP NAME; fd=N[,mac=MAC][,id=ID] uses an open TAP fd "
                   "(IFF_TAP|IFF_NO_PI|IFF_VNET_HDR). Repeatable; without mac= each NIC gets a stable "
                   "locally administered one")
        ->type_name("SPEC"));
    vm_options.push_back(run.add_flag("--rng", config.rng, "A virtio-rng device fed from the host's getrandom()"));
    auto* config_file = run.add_option(
        "--config-file", raw.config_file,
        "The whole VM from a Firecracker-format JSON file (boot-source, drives, machine-config, "
        "network-interfaces, logger, entropy) instead of the options above");
    for (auto* option : vm_options) config_file->excludes(option);
    auto* api_sock = run.add_option(
        "--api-sock", raw.api_socket,
        "Serve Firecracker's REST API on this Unix socket (created; it must not exist). Without --kernel or "
        "--config-file the VM is described through the API and starts on InstanceStart");
    run.add_flag("--no-api", raw.no_api, "No API socket (Firecracker's flag: with --config-file, a one-shot boot)")
        ->needs(config_file)
        ->excludes(api_sock);
    run.add_option("--transport", raw.transport, "How virtio devices attach: pci (virtio-pci, MSI-X) or mmio")
        ->check(CLI::IsMember({"pci", "mmio"}))
        ->capture_default_str();
    run.add_option("--seccomp", raw.seccomp,
                   "Per-thread seccomp filters (docs/security.md): on; log (nothing is stopped, the kernel "
                   "logs each call outside the lists); off (for debugging keel only)")
        ->check(CLI::IsMember({"on", "log", "off"}))
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

// Firecracker's level names -> spdlog's.
std::string spdlog_level(const std::string& firecracker_level) {
    if (firecracker_level == "Warning") return "warn";
    std::string lower(firecracker_level);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) {
        return static_cast<char>(std::tolower(c));
    });
    return lower;
}

}  // namespace

void apply_logger_config(const api::LoggerConfig& logger, bool keep_level, LogSettings& log) {
    if (logger.level && !keep_level) log.level = spdlog_level(*logger.level);
    log.path = logger.log_path.value_or("");
    log.show_level = logger.show_level;
}

namespace {

// The VM (and the log settings) from --config-file; --transport, --stats and
// an explicit --log-level still apply on top.
void apply_config_file(const std::string& path, bool log_level_given, CliOutcome& outcome) {
    auto resources = api::load_config_file(path);
    try {
        const auto stats = outcome.config;
        outcome.config = resources.to_vm_config();
        outcome.config.print_stats = stats.print_stats;
        outcome.config.stats_json_path = stats.stats_json_path;
    } catch (const api::ResourceError& e) {
        throw Error("config file '" + path + "': " + e.what());
    }
    if (const auto& logger = resources.logger()) apply_logger_config(*logger, log_level_given, outcome.log);
    outcome.resources = std::move(resources);
}

// The options that describe the VM (what --config-file replaces).
constexpr std::array kVmOptions{"--kernel", "--initrd", "--cmdline", "--cpus", "--memory",
                                "--hugepages", "--thp", "--disk", "--net", "--rng"};

// Firecracker's own command line (`firecracker --api-sock PATH`,
// `firecracker --no-api --config-file FILE`) means `keel run` with the same options.
bool firecracker_style(const std::vector<std::string>& args) {
    if (args.empty()) return false;
    const std::string_view first = args.front();
    for (const std::string_view option : {"--api-sock", "--no-api", "--config-file"}) {
        if (first == option || (first.starts_with(option) && first.substr(option.size()).starts_with("="))) {
            return true;
        }
    }
    return false;
}

}  // namespace

CliOutcome parse_command_line(const std::vector<std::string>& given_args) {
    std::vector<std::string> args = given_args;
    if (firecracker_style(args)) args.insert(args.begin(), "run");
    CliOutcome outcome;
    if (!args.empty() && args.front() == "bench") {
        outcome.command = CliCommand::Bench;
        outcome.bench_args.assign(args.begin() + 1, args.end());
        return outcome;
    }
    if (!args.empty() && args.front() == "jail") return parse_jail_command_line({args.begin() + 1, args.end()});
    CLI::App app("keel: a small, fast virtual machine monitor for Linux KVM", "keel");
    app.set_version_flag("--version,-V", std::string("keel ") + kVersion);
    app.require_subcommand(1);
    app.footer(
        "Run 'keel run --help' for the options of a command. Firecracker's command line works too: "
        "'keel --api-sock PATH' and 'keel --no-api --config-file FILE' mean 'keel run' with those options.");
    RawRunOptions raw;
    CLI::App* run = app.add_subcommand("run", "Boot a Linux guest with its serial console on this terminal");
    add_run_options(*run, outcome.config, raw, outcome.log.level);
    // Parsed by parse_bench() before CLI11 sees it; listed here for --help.
    // Parsed by parse_jail_command_line(); listed here for --help.
    app.add_subcommand("jail", "keel run confined: a chroot, cgroup and namespaces of its own, no privileges "
                               "(see 'keel jail --help')");
    app.add_subcommand("bench",
                       "Measure what a VM costs: 'keel bench boot', 'keel bench compare' (see 'keel bench --help')");

    // CLI11 reports a missing subcommand before an unknown option; name the
    // option instead, which is what the user got wrong.
    if (!args.empty() && args.front().starts_with("-") && args.front() != "--help" && args.front() != "-h" &&
        args.front() != "--version" && args.front() != "-V") {
        outcome.exit_code = 2;
        outcome.message_is_error = true;
        outcome.message = "error: unknown option '" + one_line(args.front()) + "' (see 'keel --help')";
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
        outcome.api_socket = raw.api_socket;
        const bool vm_options_given = std::any_of(kVmOptions.begin(), kVmOptions.end(),
                                                  [&](const char* name) { return run->count(name) > 0; });
        if (!raw.config_file.empty()) {
            apply_config_file(raw.config_file, run->count("--log-level") > 0, outcome);
            outcome.vm_given = true;
        } else if (outcome.config.kernel_path.empty()) {
            if (raw.api_socket.empty()) throw Error("--kernel, --config-file or --api-sock is required");
            if (vm_options_given) {
                throw Error("VM options need --kernel; with --api-sock alone the API describes the VM");
            }
        } else {
            outcome.config.memory_bytes = parse_memory_size(raw.memory, "--memory");
            if (raw.hugepages) outcome.config.page_backing = GuestPageBacking::Hugetlb2M;
            if (raw.thp) outcome.config.page_backing = GuestPageBacking::Transparent;
            for (const auto& spec : raw.disks) outcome.config.disks.push_back(block::parse_disk_option(spec));
            for (const auto& spec : raw.nets) outcome.config.nets.push_back(net::parse_net_option(spec));
            outcome.resources = api::VmResources::describe(outcome.config);
            outcome.vm_given = true;
        }
        outcome.config.transport = raw.transport == "mmio" ? VirtioTransportKind::Mmio : VirtioTransportKind::Pci;
        outcome.config.seccomp = *security::parse_seccomp_mode(raw.seccomp);
    } catch (const Error& e) {
        outcome.exit_code = 2;
        outcome.message_is_error = true;
        outcome.message = "error: " + one_line(e.what());  // user text inside may hold newlines
        return outcome;
    }
    outcome.command = CliCommand::Run;
    return outcome;
}

}  // namespace keel
