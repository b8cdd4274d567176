#include "cli/bench_cli.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <optional>
#include <sstream>

#include "bench/system_run.h"
#include "cli/cli.h"
#include "cli/one_line.h"
#include "common/error.h"
#include "common/units.h"

namespace keel {
namespace {

constexpr const char* kBenchHelp =
    "keel bench: measure what a VM costs\n"
    "Usage: keel bench boot [BENCH-OPTIONS] RUN-OPTIONS...\n"
    "       keel bench compare --kernel K --initrd I [COMPARE-OPTIONS]\n"
    "       keel bench density --count N --kernel K --initrd I [DENSITY-OPTIONS]\n"
    "       keel bench legacy [LEGACY-OPTIONS]   (also: keel bench compare --workload legacy ...)\n"
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
    "must power off by itself: keel's test guest does (guest-images/).\n"
    "\n"
    "keel bench compare runs one payload from the initrd I under keel, QEMU -M microvm (same kernel,\n"
    "vCPUs and memory) and as an OCI container (the initrd's files as its root, started by crun and\n"
    "runc), in interleaved runs, and reports side by side: launch -> the payload's marker, launch ->\n"
    "exit, host memory of the VMM or runtime (guest RAM apart), VM exits, and the host syscalls each\n"
    "system makes (one more run under strace -f). The payload prints the marker, reads one line from\n"
    "its stdin (the bench sends it once it has sampled the system) and ends; a VM's init powers off.\n"
    "guest-images/build-stock-guest's initrd has one: /bench/payload.sh.\n"
    "\n"
    "COMPARE-OPTIONS:\n"
    "  --runs N            runs of each system (default 10)\n"
    "  --cpus N            vCPUs of the VMs (default 1)\n"
    "  --memory SIZE       memory of the VMs (default 128M)\n"
    "  --systems LIST      comma-separated, any of keel, qemu-microvm, crun, runc\n"
    "                      (default: keel,qemu-microvm,crun and runc when it is installed)\n"
    "  --payload PATH      the payload inside the initrd (default /bench/payload.sh)\n"
    "  --marker TEXT       the line the payload prints when it runs (default 'KEEL-BENCH payload-ready')\n"
    "  --cmdline TEXT      the VMs' kernel command line (default: console=ttyS0 reboot=k panic=-1 quiet\n"
    "                      rdinit=PAYLOAD)\n"
    "  --json FILE         also write the report, with every run's figures and syscalls, as JSON\n"
    "  --timeout SECONDS   a run that takes longer fails the bench (default 300)\n"
    "  --no-strace         skip the runs under strace (no syscall figures)\n"
    "  --workload NAME     payload (the default: the initrd's payload, as above) or legacy: the legacy\n"
    "                      service under keel and crun, which is 'keel bench legacy' (LEGACY-OPTIONS)\n"
    "\n"
    "keel bench density starts N instances of one system at once, each booting the same payload,\n"
    "and reports how long until all had launched and all had booted (launches/s, boots/s), each\n"
    "one's launch -> marker, and the host memory per instance once all run: VMM PSS and RSS, guest\n"
    "RAM touched, and the drop of the host's MemAvailable.\n"
    "\n"
    "DENSITY-OPTIONS: --count N (1-1000, required), --system NAME (keel, qemu-microvm, crun or runc;\n"
    "default keel), and --cpus, --memory, --payload, --marker, --cmdline, --json, --timeout as for\n"
    "compare (--timeout bounds the whole batch).\n"
    "\n"
    "keel bench legacy runs the legacy workload image (guest-images/build-legacy-image: Debian 12,\n"
    "sysvinit, lighttpd) under keel, and its lighttpd as a crun container on the same root file\n"
    "system (read-only, tmpfs on /run, /tmp, /var/log), in interleaved runs, each reached over\n"
    "link-local addresses in network namespaces of the bench's own. It reports side by side: launch\n"
    "-> the first HTTP 200 carrying the image's page marker, launch -> exit after a clean stop (keel:\n"
    "SendCtrlAltDel; crun: crun kill TERM), and host memory at the first 200 (VMM or runtime and\n"
    "service RSS/PSS, guest RAM touched). Needs root, crun, iproute2 and e2fsprogs' debugfs.\n"
    "\n"
    "LEGACY-OPTIONS:\n"
    "  --runs N            runs of each system (default 3)\n"
    "  --image-dir DIR     the image (default $KEEL_LEGACY_IMAGE_DIR, else ~/.cache/keel/guest/legacy)\n"
    "  --cpus N            vCPUs of the VM (default 2)\n"
    "  --memory SIZE       memory of the VM (default 512M)\n"
    "  --json FILE         also write the report, with every run's figures, as JSON\n"
    "  --timeout SECONDS   a run that takes longer from launch to exit fails the bench (default 600)\n";

BenchOutcome cli_error(std::string message) {
    BenchOutcome outcome;
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
BenchOutcome parse_bench_boot(const std::vector<std::string>& args) {
    bench::BootBenchOptions options;
    std::vector<std::string> run_args;
    for (size_t i = 1; i < args.size(); ++i) {
        std::string name = args[i];
        std::optional<std::string> value;
        if (const auto eq = name.find('='); name.starts_with("--") && eq != std::string::npos) {
            value = name.substr(eq + 1);
            name.resize(eq);
        }
        if (name == "--help" || name == "-h") {
            BenchOutcome outcome;
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
    const CliOutcome run = parse_command_line(as_run);
    if (run.command != CliCommand::Run) {
        if (!run.message_is_error) return cli_error("error: keel bench boot: --help is 'keel bench --help'");
        return cli_error(run.message);
    }
    options.run_args = std::move(run_args);
    options.setup.kernel = run.config.kernel_path;
    options.setup.initrd = run.config.initrd_path;
    options.setup.vcpus = run.config.vcpus;
    options.setup.memory_mib = run.config.memory_bytes >> 20;
    options.setup.transport = run.config.transport == VirtioTransportKind::Mmio ? "mmio" : "pci";
    BenchOutcome outcome;
    outcome.boot = std::move(options);
    outcome.command = BenchOutcome::Command::Boot;
    return outcome;
}

// The options compare and density share: the guest, its payload and size.
struct PayloadOptions {
    std::string memory = "128M";
};

void add_payload_options(CLI::App& app, bench::CompareSetup& setup, PayloadOptions& raw) {
    app.set_help_flag();  // --help is handled before, with the whole bench help
    app.add_option("--kernel", setup.kernel)->required()->check(CLI::ExistingFile);
    app.add_option("--initrd", setup.initrd)->required()->check(CLI::ExistingFile);
    app.add_option("--cpus", setup.vcpus)->check(CLI::Range(1U, 255U));
    app.add_option("--memory", raw.memory);
    app.add_option("--payload", setup.payload);
    app.add_option("--marker", setup.marker);
    app.add_option("--cmdline", setup.cmdline);
    app.add_option("--json", setup.json_path);
    app.add_option("--timeout", setup.timeout_seconds)->check(CLI::Range(1U, 86400U));
}

// Parses `args` (args[0] is the benchmark's name) into `app`; an error message
// naming the benchmark when the command line is bad.
std::optional<std::string> parse_payload_command(CLI::App& app, const std::vector<std::string>& args,
                                                 bench::CompareSetup& setup, const PayloadOptions& raw) {
    const std::string prefix = "error: keel bench " + args[0] + ": ";
    std::vector<std::string> reversed(args.rbegin(), args.rend() - 1);
    try {
        app.parse(reversed);
        setup.memory_bytes = parse_memory_size(raw.memory, "--memory");
    } catch (const CLI::ParseError& e) {
        return prefix + one_line(e.what()) + " (see 'keel bench --help')";
    } catch (const Error& e) {
        return prefix + e.what();
    }
    if (!setup.payload.starts_with("/")) {
        return prefix + "--payload takes an absolute path inside the initrd, not '" + setup.payload + "'";
    }
    if (setup.marker.empty()) return prefix + "--marker cannot be empty";
    return std::nullopt;
}

BenchOutcome parse_bench_compare(const std::vector<std::string>& args) {
    bench::CompareSetup setup;
    PayloadOptions raw;
    std::string systems;
    bool no_strace = false;
    CLI::App app("keel bench compare", "keel bench compare");
    add_payload_options(app, setup, raw);
    app.add_option("--runs", setup.runs)->check(CLI::Range(1U, 10000U));
    const CLI::Option* systems_option = app.add_option("--systems", systems);
    app.add_flag("--no-strace", no_strace);
    if (auto error = parse_payload_command(app, args, setup, raw)) return cli_error(std::move(*error));
    if (systems_option->count() > 0 && systems.empty()) {
        return cli_error("error: keel bench compare: --systems names no system");
    }
    if (systems.empty()) {
        setup.systems = {bench::kKeel, bench::kQemuMicrovm, bench::kCrun};
        if (bench::program_in_path(bench::kRunc)) setup.systems.emplace_back(bench::kRunc);
    } else {
        std::istringstream list(systems);
        std::string system;
        while (std::getline(list, system, ',')) {
            if (!bench::is_known_system(system)) {
                return cli_error("error: keel bench compare: unknown system '" + system +
                                 "' (--systems takes keel, qemu-microvm, crun, runc)");
            }
            if (std::find(setup.systems.begin(), setup.systems.end(), system) != setup.systems.end()) {
                return cli_error("error: keel bench compare: --systems names '" + system + "' twice");
            }
            setup.systems.push_back(system);
        }
        if (setup.systems.empty()) return cli_error("error: keel bench compare: --systems names no system");
    }
    setup.strace = !no_strace;
    BenchOutcome outcome;
    outcome.command = BenchOutcome::Command::Compare;
    outcome.compare = std::move(setup);
    return outcome;
}

BenchOutcome parse_bench_density(const std::vector<std::string>& args) {
    bench::DensitySetup setup;
    PayloadOptions raw;
    std::string system = bench::kKeel;
    CLI::App app("keel bench density", "keel bench density");
    add_payload_options(app, setup.base, raw);
    app.add_option("--count", setup.count)->required()->check(CLI::Range(1U, 1000U));
    app.add_option("--system", system);
    if (auto error = parse_payload_command(app, args, setup.base, raw)) return cli_error(std::move(*error));
    if (!bench::is_known_system(system)) {
        return cli_error("error: keel bench density: unknown system '" + system +
                         "' (--system takes keel, qemu-microvm, crun, runc)");
    }
    setup.base.systems = {system};
    BenchOutcome outcome;
    outcome.command = BenchOutcome::Command::Density;
    outcome.density = std::move(setup);
    return outcome;
}

BenchOutcome parse_bench_legacy(const std::vector<std::string>& args) {
    bench::LegacySetup setup;
    std::string memory = "512M";
    CLI::App app("keel bench legacy", "keel bench legacy");
    app.set_help_flag();  // --help is handled before, with the whole bench help
    app.add_option("--runs", setup.runs)->check(CLI::Range(1U, 10000U));
    app.add_option("--image-dir", setup.image_dir)->check(CLI::ExistingDirectory);
    app.add_option("--cpus", setup.vcpus)->check(CLI::Range(1U, 255U));
    app.add_option("--memory", memory);
    app.add_option("--json", setup.json_path);
    app.add_option("--timeout", setup.timeout_seconds)->check(CLI::Range(1U, 86400U));
    std::vector<std::string> reversed(args.rbegin(), args.rend() - 1);
    try {
        app.parse(reversed);
        setup.memory_bytes = parse_memory_size(memory, "--memory");
    } catch (const CLI::ParseError& e) {
        return cli_error("error: keel bench legacy: " + one_line(e.what()) + " (see 'keel bench --help')");
    } catch (const Error& e) {
        return cli_error(std::string("error: keel bench legacy: ") + e.what());
    }
    BenchOutcome outcome;
    outcome.command = BenchOutcome::Command::Legacy;
    outcome.legacy = std::move(setup);
    return outcome;
}

// `keel bench compare --workload legacy ...` is `keel bench legacy ...`: the
// legacy service is one more thing compare sets keel beside containers with.
BenchOutcome parse_bench_compare_workload(const std::vector<std::string>& args) {
    std::vector<std::string> rest;
    std::optional<std::string> workload;
    for (size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--workload") {
            if (i + 1 == args.size()) return cli_error("error: keel bench compare: --workload needs a value");
            workload = args[++i];
        } else if (args[i].starts_with("--workload=")) {
            workload = args[i].substr(std::string("--workload=").size());
        } else {
            rest.push_back(args[i]);
        }
    }
    if (!workload || *workload == "payload") return parse_bench_compare(rest);
    if (*workload == "legacy") {
        rest[0] = "legacy";
        return parse_bench_legacy(rest);
    }
    return cli_error("error: keel bench compare: unknown workload '" + *workload +
                     "' (--workload takes payload or legacy)");
}

}  // namespace

BenchOutcome parse_bench_command_line(const std::vector<std::string>& args) {
    if (args.empty() || std::find(args.begin(), args.end(), "--help") != args.end() ||
        std::find(args.begin(), args.end(), "-h") != args.end()) {
        BenchOutcome outcome;
        outcome.message = kBenchHelp;
        outcome.exit_code = args.empty() ? 2 : 0;
        return outcome;
    }
    if (args[0] == "boot") return parse_bench_boot(args);
    if (args[0] == "compare") return parse_bench_compare_workload(args);
    if (args[0] == "density") return parse_bench_density(args);
    if (args[0] == "legacy") return parse_bench_legacy(args);
    return cli_error("error: unknown benchmark '" + args[0] + "' (see 'keel bench --help')");
}

}  // namespace keel
