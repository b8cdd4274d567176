// keel-bench: `keel bench ...` (keel execs this program, which sits next to
// it). A separate program so that the VMM users run and measure carries none
// of the benchmark code and its libraries (libarchive and what it pulls in
// would add ~1.7 MiB of RSS to every keel process). Every error ends here as
// one line on stderr and a non-zero exit.
#include <cstdio>
#include <exception>

#include "bench/boot_bench.h"
#include "bench/compare_bench.h"
#include "bench/density_bench.h"
#include "bench/legacy_bench.h"
#include "cli/bench_cli.h"
#include "common/error.h"

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    const auto bench = keel::parse_bench_command_line(args);
    if (bench.command == keel::BenchOutcome::Command::Exit) {
        std::fputs(bench.message.c_str(), bench.message_is_error ? stderr : stdout);
        if (bench.message_is_error) std::fputc('\n', stderr);
        return bench.exit_code;
    }
    try {
        if (bench.command == keel::BenchOutcome::Command::Boot) {
            keel::bench::run_boot_bench(bench.boot);
        } else if (bench.command == keel::BenchOutcome::Command::Compare) {
            keel::bench::run_compare_bench(bench.compare);
        } else if (bench.command == keel::BenchOutcome::Command::Legacy) {
            keel::bench::run_legacy_bench(bench.legacy);
        } else {
            keel::bench::run_density_bench(bench.density);
        }
        return 0;
    } catch (const keel::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: internal: %s\n", e.what());
    }
    return 1;
}
