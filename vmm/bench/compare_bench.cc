#include "bench/compare_bench.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "bench/boot_sample.h"
#include "bench/child_process.h"
#include "bench/compare_report.h"
#include "bench/host_kind.h"
#include "bench/oci_bundle.h"
#include "bench/process_probe.h"
#include "bench/syscall_surface.h"
#include "bench/system_run.h"
#include "common/error.h"
#include "core/boot_clock.h"

namespace keel::bench {
namespace {

namespace fs = std::filesystem;

class CompareRunner {
public:
    explicit CompareRunner(const CompareSetup& setup) : m_setup(setup), m_dir(make_work_dir("keel-compare")) {
        const bool containers = std::any_of(setup.systems.begin(), setup.systems.end(),
                                            [](const std::string& s) { return !is_vm_system(s); });
        if (containers) prepare_bundle(m_setup, m_dir + "/bundle");
    }

    [[nodiscard]] const std::string& dir() const { return m_dir; }

    // One timed run (or, with `strace_output`, one untimed run under strace).
    CompareSample run(const std::string& system, unsigned run_number, const std::string& strace_output = "") {
        const std::string name = system + "-" + (strace_output.empty() ? std::to_string(run_number) : "strace");
        RunPaths paths;
        paths.bundle = m_dir + "/bundle";
        paths.container_id = "keel-bench-" + std::to_string(::getpid()) + "-" + name;
        // keel's own counters for the timed runs; the traced run is keel as a
        // user runs it, without the statistics' extra reads at its stop.
        if (system == kKeel && strace_output.empty()) paths.keel_stats_json = m_dir + "/" + name + ".json";
        std::vector<std::string> args;
        if (!strace_output.empty()) {
            // LeakSanitizer cannot run under ptrace and fails the process at its
            // exit: a sanitizer build of keel is traced with leak checks off.
            const char* asan = std::getenv("ASAN_OPTIONS");
            const std::string options = std::string(asan != nullptr ? asan : "") + ":detect_leaks=0";
            args = {"strace", "-f", "-qq", "-E", "ASAN_OPTIONS=" + options, "-o", strace_output, "--"};
        }
        const auto command = system_command(system, m_setup, paths);
        args.insert(args.end(), command.begin(), command.end());
        const std::string log_path = m_dir + "/" + name + ".log";
        const std::string which =
            system + " " + (strace_output.empty() ? "run " + std::to_string(run_number) : "under strace");

        // Tracing slows every syscall down; give such a run more time.
        const uint64_t timeout_ns = uint64_t{m_setup.timeout_seconds} * kNsPerSecond * (strace_output.empty() ? 1 : 4);
        Child child = spawn_child(args, ChildStdio{.stdin_pipe = true, .stdout_pipe = true, .log_path = {}});
        const uint64_t deadline = child.launch_ns + timeout_ns;
        ConsoleWatch console(child.stdout_fd.get(), log_path, m_setup.marker);
        CompareSample sample;
        sample.system = system;
        sample.run = run_number;

        uint64_t marker_ns = 0;
        const auto result = console.read_until(true, deadline, marker_ns);
        if (result != ConsoleWatch::Result::Marker) {
            abandon_run(child.pid, system, paths.container_id);
            throw Error(which +
                        (result == ConsoleWatch::Result::Timeout
                             ? " did not print the marker within " + std::to_string(timeout_ns / kNsPerSecond) + " s"
                             : " ended before printing the marker") +
                        ": " + telling_line(log_path) + " (log: " + log_path + ")");
        }
        sample.marker_ms = ms_between(child.launch_ns, marker_ns);
        if (strace_output.empty()) {
            const TreeMemory memory = measure_process_tree(child.pid, is_vm_system(system) ? m_setup.memory_bytes : 0);
            sample.overhead_rss_kib = memory.overhead.rss_kib;
            sample.overhead_pss_kib = memory.overhead.pss_kib;
            sample.guest_ram_rss_kib = memory.guest_ram.rss_kib;
            sample.processes = memory.processes;
            if (is_vm_system(system)) sample.exits_at_marker = kvm_exits_of(child.pid);
        }
        const uint64_t go_ns = monotonic_ns();
        if (::write(child.stdin_fd.get(), "\n", 1) != 1 && errno != EPIPE) throw_errno("cannot send the go-ahead line");

        uint64_t last_output_ns = 0;
        if (console.read_until(false, deadline, last_output_ns) == ConsoleWatch::Result::Timeout) {
            abandon_run(child.pid, system, paths.container_id);
            throw Error(which + " did not end within " + std::to_string(timeout_ns / kNsPerSecond) +
                        " s of its launch after the go-ahead (log: " + log_path + ")");
        }
        uint64_t exit_ns = 0;
        const uint64_t now = monotonic_ns();
        const auto status = wait_for_child(child.pid, deadline > now ? deadline - now : 1, exit_ns);
        if (!status) {
            abandon_run(child.pid, system, paths.container_id);
            throw Error(which + " did not end after the go-ahead (log: " + log_path + ")");
        }
        if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
            abandon_run(child.pid, system, paths.container_id);
            throw Error(which + " failed, " + describe_wait_status(*status) + ": " + telling_line(log_path) +
                        " (log: " + log_path + ")");
        }
        sample.exit_ms = ms_between(child.launch_ns, exit_ns);
        sample.shutdown_ms = ms_between(go_ns, exit_ns);
        if (!paths.keel_stats_json.empty()) read_keel_stats(paths.keel_stats_json, child.launch_ns, exit_ns, sample);
        return sample;
    }

private:
    static void read_keel_stats(const std::string& path, uint64_t launch_ns, uint64_t exit_ns, CompareSample& sample) {
        std::ifstream in(path);
        const auto stats = nlohmann::json::parse(in, nullptr, false);
        if (stats.is_discarded()) throw Error("keel left no readable statistics in " + path);
        const BootSample boot = sample_from_stats(stats, launch_ns, exit_ns);
        sample.exits_to_vmm = boot.exits_to_keel;
        sample.exits_at_stop = boot.kvm_exits;
        if (stats.contains("seccomp") && stats.at("seccomp").is_object()) {
            sample.seccomp_mode = stats.at("seccomp").value("mode", std::string());
        }
    }

    const CompareSetup& m_setup;
    std::string m_dir;
};

}  // namespace

void run_compare_bench(CompareSetup setup) {
    const HostKind host = host_kind();
    setup.host = host.description;
    setup.emulated = host.emulated;
    setup.keel_binary = sibling_program("keel");
    check_systems_available(setup.systems, setup.strace);
    // The go-ahead line goes down a pipe whose reader may be gone.
    ::signal(SIGPIPE, SIG_IGN);

    CompareRunner runner(setup);
    std::error_code error;
    const bool vms = std::any_of(setup.systems.begin(), setup.systems.end(), is_vm_system);
    if (vms && !fs::is_directory("/sys/kernel/debug/kvm", error)) {
        std::fprintf(
            stderr,
            "keel bench compare: /sys/kernel/debug/kvm is not there (mount -t debugfs none /sys/kernel/debug): "
            "no VM exit counts at the marker\n");
    }
    std::vector<CompareSample> samples;
    for (unsigned run = 1; run <= setup.runs; ++run) {
        for (const auto& system : setup.systems) {
            samples.push_back(runner.run(system, run));
            std::fprintf(stderr, "keel bench compare: %s run %u of %u: marker after %.1f ms, exit after %.1f ms\n",
                         system.c_str(), run, setup.runs, samples.back().marker_ms, samples.back().exit_ms);
        }
    }
    std::vector<CompareSyscalls> syscalls;
    if (setup.strace) {
        for (const auto& system : setup.systems) {
            const std::string output = runner.dir() + "/" + system + ".strace";
            (void)runner.run(system, 0, output);
            std::ifstream in(output);
            std::stringstream text;
            text << in.rdbuf();
            syscalls.push_back({system, summarize_strace(text.str(), payload_window(system, setup))});
            std::fprintf(stderr, "keel bench compare: %s under strace: %zu distinct syscalls\n", system.c_str(),
                         syscalls.back().summary.all_calls.size());
        }
    }
    const auto summary = summarize_compare(setup, samples, syscalls);
    // What keel's runs said of their filters: one mode for all, or "mixed".
    std::string keel_seccomp_mode;
    for (const auto& sample : samples) {
        if (sample.seccomp_mode.empty()) continue;
        if (keel_seccomp_mode.empty()) keel_seccomp_mode = sample.seccomp_mode;
        if (keel_seccomp_mode != sample.seccomp_mode) keel_seccomp_mode = "mixed";
    }
    const auto surface = measure_syscall_surface();
    std::cout << compare_report_text(setup, summary) << syscall_surface_text(surface, keel_seccomp_mode) << std::flush;
    if (!setup.json_path.empty()) {
        auto report = compare_report_json(setup, summary, samples, syscalls);
        report["syscall_surface"] = syscall_surface_json(surface, keel_seccomp_mode);
        write_text_file(setup.json_path, report.dump(2) + "\n", "JSON report");
    }
    fs::remove_all(runner.dir(), error);
}

}  // namespace keel::bench
