#include "bench/boot_bench.h"

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "bench/boot_svg.h"
#include "bench/child_process.h"
#include "bench/host_kind.h"
#include "common/error.h"

namespace keel::bench {

void run_boot_bench(BootBenchOptions options) {
    const HostKind host = host_kind();
    options.setup.host = host.description;
    options.setup.emulated = host.emulated;
    const std::string exe = sibling_program("keel");
    const std::string dir = make_work_dir("keel-bench");

    std::vector<BootSample> samples;
    for (unsigned run = 1; run <= options.runs; ++run) {
        const std::string stats_path = dir + "/run-" + std::to_string(run) + ".json";
        const std::string log_path = dir + "/run-" + std::to_string(run) + ".log";
        std::vector<std::string> args{exe, "run"};
        args.insert(args.end(), options.run_args.begin(), options.run_args.end());
        args.insert(args.end(), {"--stats-json", stats_path});
        const Child spawned = spawn_child(args, ChildStdio{.log_path = log_path});
        uint64_t exit_ns = 0;
        const auto status = wait_for_child(spawned.pid, uint64_t{options.timeout_seconds} * 1'000'000'000, exit_ns);
        const std::string which = "run " + std::to_string(run) + " of " + std::to_string(options.runs);
        if (!status) {
            throw Error(which + " did not end within " + std::to_string(options.timeout_seconds) +
                        " s and was killed (its console: " + log_path + ")");
        }
        if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
            throw Error(which + " failed, " + describe_wait_status(*status) + ": " + telling_line(log_path) +
                        " (log: " + log_path + ")");
        }
        nlohmann::json stats;
        {
            std::ifstream in(stats_path);
            stats = nlohmann::json::parse(in, nullptr, false);
        }
        if (stats.is_discarded()) throw Error(which + " left no readable statistics in " + stats_path);
        samples.push_back(sample_from_stats(stats, spawned.launch_ns, exit_ns));
        std::fprintf(stderr, "keel bench boot: %s: %.1f ms from launch to exit\n", which.c_str(),
                     static_cast<double>(exit_ns - spawned.launch_ns) / 1e6);
    }

    const BootSummary summary = summarize(samples);
    std::cout << boot_report_text(options.setup, summary) << std::flush;
    if (!options.json_path.empty()) {
        write_text_file(options.json_path, boot_report_json(options.setup, summary, samples).dump(2) + "\n",
                        "JSON report");
    }
    if (!options.svg_path.empty())
        write_text_file(options.svg_path, boot_report_svg(options.setup, summary), "SVG picture");
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
}

}  // namespace keel::bench
