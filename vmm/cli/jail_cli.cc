#include "cli/jail_cli.h"

#include <CLI/CLI.hpp>
#include <algorithm>

#include "cli/one_line.h"
#include "common/error.h"

namespace keel {

namespace {

struct RawJailOptions {
    std::string uid;
    std::string gid;
    std::vector<std::string> cgroups;
    std::vector<std::string> resource_limits;
};

void add_jail_options(CLI::App& app, jail::JailOptions& options, RawJailOptions& raw) {
    app.add_option("--id", options.id,
                   "The VM's id: 1-64 characters of A-Z a-z 0-9 '-' (names its directory and cgroup)")
        ->required();
    app.add_option("--uid", raw.uid, "The user keel runs as")->required();
    app.add_option("--gid", raw.gid, "The group keel runs as")->required();
    app.add_option("--chroot-base", options.chroot_base, "The jail is <DIR>/keel/<id>/root; it must not exist yet")
        ->capture_default_str();
    app.add_option("--cgroup", raw.cgroups,
                   "A cgroup v2 limit of the VM's cgroup <cgroup-root>/keel/<id>: FILE=VALUE, e.g. memory.max=512M, "
                   "cpu.max=\"50000 100000\", pids.max=64 (repeatable; without any, no cgroup is made)")
        ->type_name("FILE=VALUE");
    app.add_option("--cgroup-root", options.cgroup_root, "Where the cgroup v2 hierarchy is mounted")
        ->capture_default_str();
    app.add_option("--resource-limit", raw.resource_limits,
                   "fsize=N (RLIMIT_FSIZE, bytes; default unlimited) or no-file=N (RLIMIT_NOFILE; default 2048)")
        ->type_name("NAME=N");
    app.add_option("--netns", options.netns, "Run keel in this network namespace (e.g. /var/run/netns/NAME)");
    app.add_flag("--new-pid-ns", options.new_pid_ns,
                 "keel is pid 1 of a pid namespace of its own; keel jail waits for it and exits with its status");
    app.add_flag("--daemonize", options.daemonize,
                 "keel runs in a session of its own with stdin, stdout and stderr on /dev/null");
    app.footer(
        "Everything after '--' is keel run's arguments. The kernel, initrd and disk images they name are "
        "bind-mounted into the jail and the arguments rewritten to name them there; --config-file and "
        "--net fd= cannot be jailed. See docs/security.md.");
}

bool names_option(const std::vector<std::string>& args, std::string_view option) {
    return std::any_of(args.begin(), args.end(), [&](const std::string& arg) {
        return arg == option || (arg.starts_with(option) && arg.substr(option.size()).starts_with("="));
    });
}

CliOutcome usage_error(const std::string& message) {
    CliOutcome outcome;
    outcome.exit_code = 2;
    outcome.message_is_error = true;
    outcome.message = "error: jail: " + one_line(message) + " (see 'keel jail --help')";
    return outcome;
}

// What keel run's own parser read from `run_args`.
jail::NamedFiles named_files(const VmConfig& config) {
    jail::NamedFiles named{config.kernel_path, config.initrd_path, {}};
    for (const auto& disk : config.disks) named.disks.push_back({disk.path, disk.read_only()});
    return named;
}

}  // namespace

CliOutcome parse_jail_command_line(const std::vector<std::string>& args) {
    CLI::App app("keel jail: keel run in a chroot, cgroup and namespaces of its own, without privileges", "keel jail");
    jail::JailOptions options;
    RawJailOptions raw;
    add_jail_options(app, options, raw);
    const auto separator = std::find(args.begin(), args.end(), "--");
    const std::vector<std::string> jail_args(args.begin(), separator);
    const bool wants_help = std::any_of(jail_args.begin(), jail_args.end(),
                                        [](const std::string& arg) { return arg == "--help" || arg == "-h"; });
    if (wants_help) {
        CliOutcome outcome;
        outcome.message = app.help();
        return outcome;
    }
    std::vector<std::string> reversed(jail_args.rbegin(), jail_args.rend());
    try {
        app.parse(reversed);
    } catch (const CLI::ParseError& e) {
        std::string text = e.what();
        std::replace(text.begin(), text.end(), '\n', ' ');
        return usage_error(text);
    }
    if (separator == args.end()) return usage_error("'--' and keel run's arguments are missing");
    const std::vector<std::string> run_args(separator + 1, args.end());
    try {
        options.uid = jail::parse_numeric_id(raw.uid, "--uid");
        options.gid = jail::parse_numeric_id(raw.gid, "--gid");
        for (const auto& text : raw.cgroups) options.cgroups.push_back(jail::parse_cgroup_setting(text));
        for (const auto& text : raw.resource_limits) jail::apply_resource_limit(text, options.limits);
        jail::validate_options(options);
    } catch (const Error& e) {
        return usage_error(e.what());
    }
    if (names_option(run_args, "--config-file")) {
        return usage_error(
            "--config-file cannot be jailed: the paths inside it name host files; give --kernel, --initrd and "
            "--disk instead");
    }
    std::vector<std::string> run_command{"run"};
    run_command.insert(run_command.end(), run_args.begin(), run_args.end());
    auto run = parse_command_line(run_command);
    if (run.command == CliCommand::Exit) {
        if (!run.message_is_error) return run;  // keel jail ... -- --help
        if (run.message.starts_with("error: ")) run.message.insert(7, "jail: keel run arguments: ");
        return run;
    }
    const auto& nets = run.config.nets;
    if (std::any_of(nets.begin(), nets.end(), [](const auto& net) { return net.uses_fd(); })) {
        return usage_error("--net fd= cannot be jailed: keel jail closes every inherited fd; use --net tap=NAME");
    }
    CliOutcome outcome;
    outcome.command = CliCommand::Jail;
    outcome.jail.options = std::move(options);
    outcome.jail.uses_tap = !nets.empty();
    try {
        outcome.jail.run = jail::plan_run_arguments(run_args, named_files(run.config));
    } catch (const Error& e) {
        return usage_error(std::string("keel run arguments: ") + e.what());
    }
    return outcome;
}

}  // namespace keel
