#pragma once

#include <string>
#include <vector>

#include "bench/boot_bench.h"
#include "bench/compare_setup.h"
#include "bench/density_report.h"
#include "bench/legacy_setup.h"

namespace keel {

// What `keel bench ...` asks for (keel-bench's command line).
struct BenchOutcome {
    enum class Command : uint8_t { Exit, Boot, Compare, Density, Legacy };
    Command command = Command::Exit;
    int exit_code = 0;    // for Command::Exit
    std::string message;  // help or a one-line error, printed by the caller
    bool message_is_error = false;
    bench::BootBenchOptions boot;  // for Command::Boot
    bench::CompareSetup compare;   // for Command::Compare
    bench::DensitySetup density;   // for Command::Density
    bench::LegacySetup legacy;     // for Command::Legacy
};

// Parses the arguments after `keel bench` (args[0] is the benchmark: boot or
// compare, density or legacy): `boot` takes keel run's options plus its own, `compare` has its
// own command line. Never throws and never prints.
[[nodiscard]] BenchOutcome parse_bench_command_line(const std::vector<std::string>& args);

}  // namespace keel
