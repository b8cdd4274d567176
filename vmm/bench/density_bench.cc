#include "bench/density_bench.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "bench/child_process.h"
#include "bench/host_kind.h"
#include "bench/process_probe.h"
#include "bench/system_run.h"
#include "common/error.h"
#include "core/boot_clock.h"

namespace keel::bench {
namespace {

std::optional<uint64_t> host_mem_available_kib() {
    std::ifstream in("/proc/meminfo");
    std::stringstream text;
    text << in.rdbuf();
    return mem_available_kib(text.str());
}

struct Instance {
    Child child;
    std::unique_ptr<ConsoleWatch> console;
    std::string container_id;
    std::string log_path;
    uint64_t marker_ns = 0;
    bool booted = false;
    bool output_ended = false;
};

class DensityRun {
public:
    DensityRun(const DensitySetup& setup, std::string dir) : m_setup(setup), m_dir(std::move(dir)) {}
    DensityRun(const DensityRun&) = delete;
    DensityRun& operator=(const DensityRun&) = delete;

    // Whatever happens, no instance outlives the bench.
    ~DensityRun() {
        for (auto& instance : m_instances) {
            if (instance.child.pid > 0) abandon_run(instance.child.pid, system(), instance.container_id);
        }
    }

    DensityResult run() {
        DensityResult result;
        result.system = system();
        result.count = m_setup.count;
        const auto available_before = host_mem_available_kib();
        launch_all();
        const uint64_t first = m_instances.front().child.launch_ns;
        result.all_launched_ms = ms_between(first, m_instances.back().child.launch_ns);
        const uint64_t deadline = first + uint64_t{m_setup.base.timeout_seconds} * kNsPerSecond;

        wait_for_markers(deadline);
        uint64_t last_marker = 0;
        for (const auto& instance : m_instances) {
            last_marker = std::max(last_marker, instance.marker_ns);
            result.marker_ms.push_back(ms_between(instance.child.launch_ns, instance.marker_ns));
        }
        result.all_booted_ms = ms_between(first, last_marker);
        const bool vm = is_vm_system(system());
        for (const auto& instance : m_instances) {
            const TreeMemory memory = measure_process_tree(instance.child.pid, vm ? m_setup.base.memory_bytes : 0);
            result.overhead_rss_kib += memory.overhead.rss_kib;
            result.overhead_pss_kib += memory.overhead.pss_kib;
            result.guest_ram_kib += memory.guest_ram.rss_kib;
        }
        const auto available_after = host_mem_available_kib();
        if (available_before && available_after) {
            result.mem_available_drop_kib =
                static_cast<int64_t>(*available_before) - static_cast<int64_t>(*available_after);
        }

        for (auto& instance : m_instances) {
            if (::write(instance.child.stdin_fd.get(), "\n", 1) != 1 && errno != EPIPE) {
                throw_errno("cannot send the go-ahead line");
            }
        }
        result.all_exited_ms = ms_between(first, wait_for_exits(deadline));
        return result;
    }

private:
    [[nodiscard]] const std::string& system() const { return m_setup.base.systems.front(); }

    void launch_all() {
        m_instances.reserve(m_setup.count);
        for (unsigned i = 1; i <= m_setup.count; ++i) {
            RunPaths paths;
            paths.bundle = m_dir + "/bundle";
            paths.container_id = "keel-density-" + std::to_string(::getpid()) + "-" + std::to_string(i);
            Instance instance;
            instance.container_id = paths.container_id;
            instance.log_path = m_dir + "/" + system() + "-" + std::to_string(i) + ".log";
            instance.child = spawn_child(system_command(system(), m_setup.base, paths),
                                         ChildStdio{.stdin_pipe = true, .stdout_pipe = true, .log_path = {}});
            instance.console =
                std::make_unique<ConsoleWatch>(instance.child.stdout_fd.get(), instance.log_path, m_setup.base.marker);
            m_instances.push_back(std::move(instance));
        }
    }

    [[nodiscard]] std::string which(size_t index) const {
        return system() + " instance " + std::to_string(index + 1) + " of " + std::to_string(m_instances.size());
    }

    // Polls the consoles of the instances `pending` selects until the deadline
    // and hands each readable one to `on_readable`; returns false when none was pending.
    template <typename Pending, typename OnReadable>
    bool poll_consoles(uint64_t deadline, const std::string& late, Pending pending, OnReadable on_readable) {
        std::vector<pollfd> fds;
        std::vector<size_t> index;
        for (size_t i = 0; i < m_instances.size(); ++i) {
            if (!pending(m_instances[i])) continue;
            fds.push_back({m_instances[i].console->fd(), POLLIN, 0});
            index.push_back(i);
        }
        if (fds.empty()) return false;
        const uint64_t now = monotonic_ns();
        if (now >= deadline) throw Error(late + " (logs: " + m_dir + ")");
        const int ready = ::poll(fds.data(), fds.size(), poll_wait_ms(now, deadline));
        if (ready < 0 && errno != EINTR) throw_errno("poll on the instances' consoles");
        for (size_t k = 0; ready > 0 && k < fds.size(); ++k) {
            if (fds[k].revents != 0) on_readable(index[k]);
        }
        return true;
    }

    void wait_for_markers(uint64_t deadline) {
        const std::string late =
            "not every instance printed the marker within " + std::to_string(m_setup.base.timeout_seconds) + " s";
        const auto not_booted = [](const Instance& instance) { return !instance.booted; };
        while (poll_consoles(deadline, late, not_booted, [&](size_t i) {
            Instance& instance = m_instances[i];
            uint64_t when = 0;
            const auto status = instance.console->read_available(true, when);
            if (status == ConsoleWatch::Result::Marker) {
                instance.booted = true;
                instance.marker_ns = when;
            } else if (status == ConsoleWatch::Result::End) {
                throw Error(which(i) + " ended before printing the marker: " + telling_line(instance.log_path) +
                            " (log: " + instance.log_path + ")");
            }
        })) {
        }
    }

    // Reads every console to its end, then reaps every process; returns when the last one ended.
    uint64_t wait_for_exits(uint64_t deadline) {
        const auto output_open = [](const Instance& instance) { return !instance.output_ended; };
        while (poll_consoles(deadline, "not every instance ended after the go-ahead", output_open, [&](size_t i) {
            uint64_t when = 0;
            if (m_instances[i].console->read_available(false, when) == ConsoleWatch::Result::End) {
                m_instances[i].output_ended = true;
            }
        })) {
        }
        uint64_t last_exit = 0;
        for (size_t i = 0; i < m_instances.size(); ++i) {
            Instance& instance = m_instances[i];
            const uint64_t now = monotonic_ns();
            uint64_t exit_ns = 0;
            const auto status = wait_for_child(instance.child.pid, deadline > now ? deadline - now : 1, exit_ns);
            const pid_t pid = instance.child.pid;
            instance.child.pid = -1;  // reaped (or killed) either way
            if (!status) throw Error(which(i) + " did not end after the go-ahead (log: " + instance.log_path + ")");
            if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
                throw Error(which(i) + " (pid " + std::to_string(pid) + ") failed, " + describe_wait_status(*status) +
                            ": " + telling_line(instance.log_path) + " (log: " + instance.log_path + ")");
            }
            last_exit = std::max(last_exit, exit_ns);
        }
        return last_exit;
    }

    const DensitySetup& m_setup;
    std::string m_dir;
    std::vector<Instance> m_instances;
};

}  // namespace

void run_density_bench(DensitySetup setup) {
    const HostKind host = host_kind();
    setup.base.host = host.description;
    setup.base.emulated = host.emulated;
    setup.base.keel_binary = sibling_program("keel");
    check_systems_available(setup.base.systems, false);
    ::signal(SIGPIPE, SIG_IGN);  // the go-ahead lines go down pipes whose readers may be gone

    const std::string dir = make_work_dir("keel-density");
    if (!is_vm_system(setup.base.systems.front())) prepare_bundle(setup.base, dir + "/bundle");
    DensityResult result;
    {
        DensityRun run(setup, dir);
        result = run.run();
    }
    std::cout << density_report_text(setup, result) << std::flush;
    if (!setup.base.json_path.empty()) {
        write_text_file(setup.base.json_path, density_report_json(setup, result).dump(2) + "\n", "JSON report");
    }
    std::error_code error;
    std::filesystem::remove_all(dir, error);
}

}  // namespace keel::bench
