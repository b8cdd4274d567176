#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cli/bench_cli.h"
#include "cli/cli.h"
#include "cli_checks.h"
#include "common/units.h"

using namespace keel;

namespace {

using keel::test::check_one_line_usage_error;

void check_one_line_usage_error(const BenchOutcome& out) {
    INFO(out.message);
    CHECK(out.command == BenchOutcome::Command::Exit);
    CHECK(out.exit_code == 2);
    CHECK(out.message_is_error);
    CHECK(out.message.rfind("error: ", 0) == 0);
    CHECK(out.message.find('\n') == std::string::npos);
}

}  // namespace

TEST_CASE("run options map onto the VM config", "[cli]") {
    const auto out = parse_command_line({"run", "--kernel", "bz", "--initrd", "rd", "--cmdline", "console=ttyS0 quiet",
                                         "--cpus", "4", "--memory", "1G", "--stats", "--stats-json", "s.json"});
    REQUIRE(out.command == CliCommand::Run);
    CHECK(out.config.kernel_path == "bz");
    CHECK(out.config.initrd_path == "rd");
    CHECK(out.config.cmdline == "console=ttyS0 quiet");
    CHECK(out.config.vcpus == 4);
    CHECK(out.config.memory_bytes == GiB);
    CHECK(out.config.print_stats);
    CHECK(out.config.stats_json_path == "s.json");
}

TEST_CASE("run defaults: 1 vCPU, 256 MiB, serial console command line", "[cli]") {
    const auto out = parse_command_line({"run", "--kernel", "bz"});
    REQUIRE(out.command == CliCommand::Run);
    CHECK(out.config.vcpus == 1);
    CHECK(out.config.memory_bytes == 256 * MiB);
    CHECK(out.config.cmdline.find("console=ttyS0") != std::string::npos);
    CHECK(out.log.level == "warn");
}

TEST_CASE("guest RAM backing follows --hugepages and --thp", "[cli]") {
    CHECK(parse_command_line({"run", "--kernel", "bz"}).config.page_backing == GuestPageBacking::Normal);
    CHECK(parse_command_line({"run", "--kernel", "bz", "--hugepages"}).config.page_backing ==
          GuestPageBacking::Hugetlb2M);
    CHECK(parse_command_line({"run", "--kernel", "bz", "--thp"}).config.page_backing == GuestPageBacking::Transparent);
    check_one_line_usage_error(parse_command_line({"run", "--kernel", "bz", "--hugepages", "--thp"}));
    check_one_line_usage_error(parse_command_line({"run", "--config-file", "vm.json", "--hugepages"}));
    VmConfig odd;
    odd.kernel_path = "bz";
    odd.memory_bytes = 255 * MiB;
    odd.page_backing = GuestPageBacking::Hugetlb2M;
    CHECK_THROWS_WITH(validate_config(odd, 0), Catch::Contains("must be a multiple of 2 MiB with --hugepages"));
    odd.page_backing = GuestPageBacking::Transparent;
    CHECK_NOTHROW(validate_config(odd, 0));
}

TEST_CASE("seccomp filters are on unless --seccomp says log or off, also with a config file or the API", "[cli]") {
    using keel::security::SeccompMode;
    CHECK(parse_command_line({"run", "--kernel", "bz"}).config.seccomp == keel::security::kDefaultSeccompMode);
    CHECK(parse_command_line({"run", "--kernel", "bz", "--seccomp", "on"}).config.seccomp == SeccompMode::Enforce);
    CHECK(parse_command_line({"run", "--kernel", "bz", "--seccomp", "log"}).config.seccomp == SeccompMode::Log);
    CHECK(parse_command_line({"run", "--kernel", "bz", "--seccomp=off"}).config.seccomp == SeccompMode::Off);
    CHECK(parse_command_line({"--api-sock", "/run/k.sock", "--seccomp", "log"}).config.seccomp == SeccompMode::Log);
    check_one_line_usage_error(parse_command_line({"run", "--kernel", "bz", "--seccomp", "strict"}));
    check_one_line_usage_error(parse_command_line({"run", "--kernel", "bz", "--seccomp"}));
}

TEST_CASE("bad command lines are one-line errors with exit status 2", "[cli]") {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"run"},
             {"run", "--kernel"},
             {"run", "--kernel", "bz", "--cpus", "many"},
             {"run", "--kernel", "bz", "--memory", "12Q"},
             {"run", "--kernel", "bz", "--bogus"},
             {"--bogus"},
             {"fly"},
             {"run", "--kernel", "bz", "--log-level", "loud"},
             {"run", "--config-file", "/nonexistent/vm.json"},
             {"run", "--config-file", "vm.json", "--kernel", "bz"},
             {"run", "--config-file", "vm.json", "--disk", "path=d"},
             {"run", "--config-file"},
             {"run", "--no-api"},
             {"run", "--no-api", "--kernel", "bz"},
             {"run", "--api-sock", "s", "--cpus", "2"},
             {"--no-api", "--api-sock", "s", "--config-file", "vm.json"},
             {"run", "--api-sock"},
             // Newlines in the user's own text (found by cli_fuzzer) stay out of the line.
             {"--bo\ngus"},
             {"run", "--kernel", "bz", "--disk", "path=a\nb,bogus=1"},
             {"jail", "--uid", "1\n2", "--", "--kernel", "bz"}}) {
        check_one_line_usage_error(parse_command_line(args));
    }
}

TEST_CASE("a config file describes the VM, and --transport, --stats and --log-level still apply", "[cli]") {
    const std::string dir = "/tmp/keel-cli-test-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/vmlinux") << "k";
    std::ofstream(dir + "/vm.json") << R"({"boot-source": {"kernel_image_path": ")" << dir
                                    << R"(/vmlinux", "boot_args": "console=ttyS0"}, "drives": [],
        "machine-config": {"vcpu_count": 2, "mem_size_mib": 64}, "logger": {"level": "Debug", "show_level": false}})";
    const auto out = parse_command_line(
        {"run", "--config-file", dir + "/vm.json", "--transport", "mmio", "--stats-json", "s.json"});
    INFO(out.message);
    REQUIRE(out.command == CliCommand::Run);
    CHECK(out.config.kernel_path == dir + "/vmlinux");
    CHECK(out.config.cmdline == "console=ttyS0");
    CHECK(out.config.vcpus == 2);
    CHECK(out.config.memory_bytes == 64 * MiB);
    CHECK(out.config.transport == VirtioTransportKind::Mmio);
    CHECK(out.config.stats_json_path == "s.json");
    CHECK(out.log.level == "debug");
    CHECK_FALSE(out.log.show_level);
    // Firecracker's one-shot form.
    const auto one_shot = parse_command_line({"--no-api", "--config-file", dir + "/vm.json"});
    REQUIRE(one_shot.command == CliCommand::Run);
    CHECK(one_shot.vm_given);
    CHECK(one_shot.api_socket.empty());
    CHECK(one_shot.config.vcpus == 2);
    const auto quiet = parse_command_line({"run", "--config-file", dir + "/vm.json", "--log-level", "error"});
    CHECK(quiet.log.level == "error");  // the command line wins over the file
    std::ofstream(dir + "/metrics.json") << R"({"boot-source": {"kernel_image_path": ")" << dir
                                         << R"(/vmlinux"}, "drives": [], "metrics": {"metrics_path": "m.json"}})";
    // A metrics file is the session's to write (main runs one for it).
    const auto with_metrics = parse_command_line({"run", "--config-file", dir + "/metrics.json"});
    REQUIRE(with_metrics.command == CliCommand::Run);
    REQUIRE(with_metrics.resources.metrics());
    CHECK(with_metrics.resources.metrics()->metrics_path == "m.json");
    std::filesystem::remove_all(dir);
}

TEST_CASE("the API socket option alone waits for the API, with a VM it serves the API beside it", "[cli]") {
    // Firecracker's own command line means keel run.
    const auto waiting = parse_command_line({"--api-sock", "/run/keel.sock", "--transport", "mmio"});
    INFO(waiting.message);
    REQUIRE(waiting.command == CliCommand::Run);
    CHECK(waiting.api_socket == "/run/keel.sock");
    CHECK_FALSE(waiting.vm_given);
    CHECK(waiting.config.transport == VirtioTransportKind::Mmio);
    CHECK(parse_command_line({"--api-sock=/run/keel.sock"}).api_socket == "/run/keel.sock");

    const auto with_vm = parse_command_line(
        {"run", "--api-sock", "a.sock", "--kernel", "bz", "--cpus", "2", "--disk", "path=d.img,readonly=on"});
    INFO(with_vm.message);
    REQUIRE(with_vm.command == CliCommand::Run);
    CHECK(with_vm.vm_given);
    // GET /vm/config shows the command line's VM.
    const auto described = with_vm.resources.to_json();
    CHECK(described["boot-source"]["kernel_image_path"] == "bz");
    CHECK(described["machine-config"]["vcpu_count"] == 2);
    CHECK(described["drives"][0]["drive_id"] == "blk0");  // the device's own name, for PATCH /drives
    CHECK(described["drives"][0]["is_read_only"] == true);

    const auto plain = parse_command_line({"run", "--kernel", "bz"});
    CHECK(plain.api_socket.empty());
}

TEST_CASE("version and help requests exit 0 with text on stdout", "[cli]") {
    const auto version = parse_command_line({"--version"});
    CHECK(version.command == CliCommand::Exit);
    CHECK(version.exit_code == 0);
    CHECK(version.message.rfind("keel ", 0) == 0);
    const auto help = parse_command_line({"run", "--help"});
    CHECK(help.exit_code == 0);
    CHECK_FALSE(help.message_is_error);
    CHECK(help.message.find("--kernel") != std::string::npos);
}

TEST_CASE("net options map onto the VM config in order", "[cli]") {
    const auto out = parse_command_line({"run", "--kernel", "bz", "--net", "tap=tap0,mac=02:aa:bb:cc:dd:ee,id=lan",
                                         "--net", "fd=7"});
    REQUIRE(out.command == CliCommand::Run);
    REQUIRE(out.config.nets.size() == 2);
    CHECK(out.config.nets[0].tap_name == "tap0");
    CHECK(out.config.nets[0].id == "lan");
    REQUIRE(out.config.nets[0].mac.has_value());
    CHECK(net::format_mac(*out.config.nets[0].mac) == "02:aa:bb:cc:dd:ee");
    CHECK(out.config.nets[1].uses_fd());
    CHECK(out.config.nets[1].tap_fd == 7);
    CHECK_FALSE(out.config.nets[1].mac.has_value());
}

TEST_CASE("a bad --net value is an error with exit status 2", "[cli]") {
    const auto out = parse_command_line({"run", "--kernel", "bz", "--net", "tap=tap0,mac=zz:00:00:00:00:00"});
    CHECK(out.command == CliCommand::Exit);
    CHECK(out.exit_code == 2);
    CHECK(out.message.find("mac=") != std::string::npos);
}

TEST_CASE("bench boot takes its own options and hands the rest to each run", "[cli][bench]") {
    const auto out = parse_bench_command_line({"boot", "--runs", "3", "--kernel", "bz", "--json=r.json", "--cpus",
                                         "2", "--svg", "r.svg", "--memory", "128M", "--timeout", "60", "--transport",
                                         "mmio"});
    REQUIRE(out.command == BenchOutcome::Command::Boot);
    const auto& bench = out.boot;
    CHECK(bench.runs == 3);
    CHECK(bench.json_path == "r.json");
    CHECK(bench.svg_path == "r.svg");
    CHECK(bench.timeout_seconds == 60);
    CHECK(bench.run_args ==
          std::vector<std::string>{"--kernel", "bz", "--cpus", "2", "--memory", "128M", "--transport", "mmio"});
    CHECK(bench.setup.kernel == "bz");
    CHECK(bench.setup.vcpus == 2);
    CHECK(bench.setup.memory_mib == 128);
    CHECK(bench.setup.transport == "mmio");

    const auto defaults = parse_bench_command_line({"boot", "--kernel", "bz"});
    REQUIRE(defaults.command == BenchOutcome::Command::Boot);
    CHECK(defaults.boot.runs == 10);
    CHECK(defaults.boot.timeout_seconds == 300);
}

TEST_CASE("bad bench command lines are one-line errors with exit status 2", "[cli][bench]") {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"fly"},
             {"boot"},  // no --kernel: the run options' own error
             {"boot", "--kernel", "bz", "--runs", "0"},
             {"boot", "--kernel", "bz", "--runs", "many"},
             {"boot", "--kernel", "bz", "--runs"},
             {"boot", "--kernel", "bz", "--timeout", "-1"},
             {"boot", "--kernel", "bz", "--json="},
             {"boot", "--kernel", "bz", "--stats-json", "x"},
             {"boot", "--kernel", "bz", "--cpus", "lots"}}) {
        check_one_line_usage_error(parse_bench_command_line(args));
    }
    const auto help = parse_bench_command_line({"boot", "--help"});
    CHECK(help.exit_code == 0);
    CHECK(help.message.find("--runs N") != std::string::npos);
    CHECK(parse_command_line({"--help"}).message.find("bench") != std::string::npos);
}

TEST_CASE("bench density takes a count and one system", "[cli][bench]") {
    const std::string file = std::string(KEEL_SOURCE_DIR) + "/README.md";
    const auto out = parse_bench_command_line({"density", "--count", "8", "--kernel", file, "--initrd", file,
                                               "--memory", "64M", "--system", "crun", "--json", "d.json"});
    INFO(out.message);
    REQUIRE(out.command == BenchOutcome::Command::Density);
    CHECK(out.density.count == 8);
    CHECK(out.density.base.systems == std::vector<std::string>{"crun"});
    CHECK(out.density.base.memory_bytes == (uint64_t{64} << 20));
    CHECK(out.density.base.json_path == "d.json");
    const auto defaults = parse_bench_command_line({"density", "--count", "2", "--kernel", file, "--initrd", file});
    REQUIRE(defaults.command == BenchOutcome::Command::Density);
    CHECK(defaults.density.base.systems == std::vector<std::string>{"keel"});
    CHECK(defaults.density.base.memory_bytes == (uint64_t{128} << 20));
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"density", "--kernel", file, "--initrd", file},
             {"density", "--count", "0", "--kernel", file, "--initrd", file},
             {"density", "--count", "1001", "--kernel", file, "--initrd", file},
             {"density", "--count", "2", "--kernel", file, "--initrd", file, "--system", "docker"},
             {"density", "--count", "2", "--kernel", file, "--initrd", file, "--systems", "keel"},
             {"density", "--count", "2", "--kernel", file}}) {
        check_one_line_usage_error(parse_bench_command_line(args));
    }
}

TEST_CASE("keel hands everything after 'bench' to keel-bench", "[cli][bench]") {
    const auto out = parse_command_line({"bench", "compare", "--runs", "2"});
    CHECK(out.command == CliCommand::Bench);
    CHECK(out.bench_args == std::vector<std::string>{"compare", "--runs", "2"});
    CHECK(parse_command_line({"bench"}).bench_args.empty());
    const auto none = parse_bench_command_line({});
    CHECK(none.exit_code == 2);
    CHECK(none.message.find("Usage: keel bench boot") != std::string::npos);
}

TEST_CASE("bench compare takes the same guest for every system", "[cli][bench]") {
    // Existing files stand in for the kernel and initrd: only their presence is checked here.
    const std::string file = std::string(KEEL_SOURCE_DIR) + "/README.md";
    const auto out = parse_bench_command_line({"compare", "--kernel", file, "--initrd", file, "--runs", "4", "--cpus",
                                         "2", "--memory", "256M", "--systems", "keel,crun", "--json", "c.json",
                                         "--payload", "/p", "--marker", "ready", "--timeout", "30", "--no-strace"});
    INFO(out.message);
    REQUIRE(out.command == BenchOutcome::Command::Compare);
    const auto& setup = out.compare;
    CHECK(setup.kernel == file);
    CHECK(setup.initrd == file);
    CHECK(setup.runs == 4);
    CHECK(setup.vcpus == 2);
    CHECK(setup.memory_bytes == (uint64_t{256} << 20));
    CHECK(setup.systems == std::vector<std::string>{"keel", "crun"});
    CHECK(setup.json_path == "c.json");
    CHECK(setup.payload == "/p");
    CHECK(setup.marker == "ready");
    CHECK(setup.timeout_seconds == 30);
    CHECK_FALSE(setup.strace);

    const auto defaults = parse_bench_command_line({"compare", "--kernel", file, "--initrd", file});
    REQUIRE(defaults.command == BenchOutcome::Command::Compare);
    CHECK(defaults.compare.runs == 10);
    CHECK(defaults.compare.vcpus == 1);
    CHECK(defaults.compare.memory_bytes == (uint64_t{128} << 20));
    CHECK(defaults.compare.payload == "/bench/payload.sh");
    CHECK(defaults.compare.strace);
    const auto& systems = defaults.compare.systems;
    REQUIRE(systems.size() >= 3);
    CHECK(std::vector<std::string>(systems.begin(), systems.begin() + 3) ==
          std::vector<std::string>{"keel", "qemu-microvm", "crun"});
}

TEST_CASE("bad bench compare command lines are one-line errors with exit status 2", "[cli][bench]") {
    const std::string file = std::string(KEEL_SOURCE_DIR) + "/README.md";
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"compare"},
             {"compare", "--kernel", file},
             {"compare", "--kernel", "/nonexistent/bz", "--initrd", file},
             {"compare", "--kernel", file, "--initrd", file, "--systems", "keel,docker"},
             {"compare", "--kernel", file, "--initrd", file, "--systems", "keel,keel"},
             {"compare", "--kernel", file, "--initrd", file, "--systems", ""},
             {"compare", "--kernel", file, "--initrd", file, "--runs", "0"},
             {"compare", "--kernel", file, "--initrd", file, "--memory", "lots"},
             {"compare", "--kernel", file, "--initrd", file, "--payload", "bench/payload.sh"},
             {"compare", "--kernel", file, "--initrd", file, "--marker", ""},
             {"compare", "--kernel", file, "--initrd", file, "--warp"}}) {
        check_one_line_usage_error(parse_bench_command_line(args));
    }
    const auto help = parse_bench_command_line({"compare", "--help"});
    CHECK(help.exit_code == 0);
    CHECK(help.message.find("--systems LIST") != std::string::npos);
}

TEST_CASE("bench compare --workload legacy is the legacy bench, --workload payload the default compare",
          "[cli][bench]") {
    const auto legacy = parse_bench_command_line({"compare", "--workload", "legacy", "--runs", "4", "--memory", "256M"});
    INFO(legacy.message);
    REQUIRE(legacy.command == BenchOutcome::Command::Legacy);
    CHECK(legacy.legacy.runs == 4);
    CHECK(legacy.legacy.memory_bytes == (uint64_t{256} << 20));
    CHECK(parse_bench_command_line({"compare", "--runs", "2", "--workload=legacy"}).command ==
          BenchOutcome::Command::Legacy);

    const std::string file = std::string(KEEL_SOURCE_DIR) + "/README.md";  // compare wants files that exist
    const auto payload =
        parse_bench_command_line({"compare", "--kernel", file, "--initrd", file, "--workload", "payload"});
    INFO(payload.message);
    REQUIRE(payload.command == BenchOutcome::Command::Compare);
    CHECK(payload.compare.kernel == file);

    for (const auto& args : std::vector<std::vector<std::string>>{{"compare", "--workload"},
                                                                  {"compare", "--workload", "web"},
                                                                  {"compare", "--workload", "legacy", "--kernel", "k"}}) {
        check_one_line_usage_error(parse_bench_command_line(args));
    }
    CHECK(parse_bench_command_line({"compare", "--workload", "web"}).message ==
          "error: keel bench compare: unknown workload 'web' (--workload takes payload or legacy)");
}

TEST_CASE("bench legacy takes the image, the runs and the VM's size, and everything has a default", "[cli][bench]") {
    const std::string dir = KEEL_SOURCE_DIR;
    const auto out = parse_bench_command_line({"legacy", "--runs", "5", "--image-dir", dir, "--cpus", "1", "--memory",
                                               "256M", "--json", "l.json", "--timeout", "900"});
    INFO(out.message);
    REQUIRE(out.command == BenchOutcome::Command::Legacy);
    CHECK(out.legacy.runs == 5);
    CHECK(out.legacy.image_dir == dir);
    CHECK(out.legacy.vcpus == 1);
    CHECK(out.legacy.memory_bytes == (uint64_t{256} << 20));
    CHECK(out.legacy.json_path == "l.json");
    CHECK(out.legacy.timeout_seconds == 900);

    const auto defaults = parse_bench_command_line({"legacy"});
    REQUIRE(defaults.command == BenchOutcome::Command::Legacy);
    CHECK(defaults.legacy.runs == 3);
    CHECK(defaults.legacy.image_dir.empty());  // resolved when the bench runs
    CHECK(defaults.legacy.vcpus == 2);
    CHECK(defaults.legacy.memory_bytes == (uint64_t{512} << 20));
    CHECK(defaults.legacy.timeout_seconds == 600);

    for (const auto& args : std::vector<std::vector<std::string>>{{"legacy", "--runs", "0"},
                                                                  {"legacy", "--runs", "many"},
                                                                  {"legacy", "--image-dir", "/nonexistent/legacy"},
                                                                  {"legacy", "--memory", "lots"},
                                                                  {"legacy", "--cpus", "0"},
                                                                  {"legacy", "--systems", "keel"},
                                                                  {"legacy", "stray"}}) {
        check_one_line_usage_error(parse_bench_command_line(args));
    }
    const auto help = parse_bench_command_line({"legacy", "--help"});
    CHECK(help.exit_code == 0);
    CHECK(help.message.find("keel bench legacy [LEGACY-OPTIONS]") != std::string::npos);
    CHECK(help.message.find("--image-dir DIR") != std::string::npos);
}
