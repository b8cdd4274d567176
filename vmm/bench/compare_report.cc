#include "bench/compare_report.h"

#include <cstdio>
#include <functional>
#include <map>
#include <sstream>

#include "bench/report_table.h"

namespace keel::bench {
namespace {

Spread spread_over(const std::vector<const CompareSample*>& runs,
                   const std::function<std::optional<double>(const CompareSample&)>& figure) {
    std::vector<double> values;
    for (const auto* sample : runs) {
        if (const auto value = figure(*sample)) values.push_back(*value);
    }
    return spread_of(std::move(values));
}

struct Row {
    const char* name;
    const char* json_name;
    std::function<const Spread&(const SystemSummary&)> spread;
    int decimals;
};

const std::vector<Row>& rows() {
    static const std::vector<Row> table{
        {"launch -> marker, ms", "launch_to_marker_ms",
         [](const SystemSummary& s) -> const Spread& { return s.marker_ms; }, 1},
        {"launch -> exit, ms", "launch_to_exit_ms", [](const SystemSummary& s) -> const Spread& { return s.exit_ms; },
         1},
        {"go-ahead -> exit, ms", "go_ahead_to_exit_ms",
         [](const SystemSummary& s) -> const Spread& { return s.shutdown_ms; }, 1},
        {"VMM/runtime RSS, KiB", "overhead_rss_kib",
         [](const SystemSummary& s) -> const Spread& { return s.overhead_rss_kib; }, 0},
        {"VMM/runtime PSS, KiB", "overhead_pss_kib",
         [](const SystemSummary& s) -> const Spread& { return s.overhead_pss_kib; }, 0},
        {"guest RAM touched, KiB", "guest_ram_touched_kib",
         [](const SystemSummary& s) -> const Spread& { return s.guest_ram_rss_kib; }, 0},
        {"VM exits launch -> marker", "vm_exits_to_marker",
         [](const SystemSummary& s) -> const Spread& { return s.exits_at_marker; }, 0},
        {"VM exits to the VMM, whole run", "vm_exits_to_vmm",
         [](const SystemSummary& s) -> const Spread& { return s.exits_to_vmm; }, 0},
        {"VM exits (KVM), whole run", "vm_exits_whole_run",
         [](const SystemSummary& s) -> const Spread& { return s.exits_at_stop; }, 0},
    };
    return table;
}

}  // namespace

std::vector<SystemSummary> summarize_compare(const CompareSetup& setup, const std::vector<CompareSample>& samples,
                                             const std::vector<CompareSyscalls>& syscalls) {
    std::vector<SystemSummary> out;
    for (const auto& system : setup.systems) {
        std::vector<const CompareSample*> runs;
        for (const auto& sample : samples) {
            if (sample.system == system) runs.push_back(&sample);
        }
        SystemSummary s;
        s.system = system;
        s.runs = runs.size();
        const auto as_double = [](uint64_t v) { return std::optional<double>(static_cast<double>(v)); };
        const auto optional_double = [](const std::optional<uint64_t>& v) {
            return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
        };
        s.marker_ms = spread_over(runs, [](const CompareSample& r) { return std::optional<double>(r.marker_ms); });
        s.exit_ms = spread_over(runs, [](const CompareSample& r) { return std::optional<double>(r.exit_ms); });
        s.shutdown_ms = spread_over(runs, [](const CompareSample& r) { return std::optional<double>(r.shutdown_ms); });
        s.overhead_rss_kib = spread_over(runs, [&](const CompareSample& r) { return as_double(r.overhead_rss_kib); });
        s.overhead_pss_kib = spread_over(runs, [&](const CompareSample& r) { return as_double(r.overhead_pss_kib); });
        if (is_vm_system(system)) {
            s.guest_ram_rss_kib =
                spread_over(runs, [&](const CompareSample& r) { return as_double(r.guest_ram_rss_kib); });
        }
        s.exits_at_marker =
            spread_over(runs, [&](const CompareSample& r) { return optional_double(r.exits_at_marker); });
        s.exits_to_vmm = spread_over(runs, [&](const CompareSample& r) { return optional_double(r.exits_to_vmm); });
        s.exits_at_stop = spread_over(runs, [&](const CompareSample& r) { return optional_double(r.exits_at_stop); });
        for (const auto& traced : syscalls) {
            if (traced.system != system) continue;
            s.traced = true;
            s.syscalls_distinct = traced.summary.all_calls.size();
            s.syscalls_distinct_payload = traced.summary.window_calls.size();
            s.syscalls_payload = 0;
            for (const auto& [name, calls] : traced.summary.window_calls) s.syscalls_payload += calls;
        }
        out.push_back(std::move(s));
    }
    return out;
}

std::string compare_report_text(const CompareSetup& setup, const std::vector<SystemSummary>& summary) {
    std::ostringstream out;
    size_t runs = summary.empty() ? 0 : summary.front().runs;
    out << "keel bench compare: " << runs << " runs of each system, interleaved\n";
    out << "kernel " << setup.kernel << ", initrd " << setup.initrd << ", payload " << setup.payload << ", "
        << setup.vcpus << " vCPU" << (setup.vcpus == 1 ? "" : "s") << ", " << (setup.memory_bytes >> 20) << " MiB\n";
    out << "host: " << setup.host << "\n";
    if (setup.emulated) out << kEmulatedHostWarning;
    std::vector<std::string> columns;
    for (const auto& s : summary) columns.push_back(s.system);
    std::vector<TableRow> table;
    for (const auto& row : rows()) {
        table.push_back({row.name, {}});
        for (const auto& s : summary) table.back().cells.push_back(spread_cell(row.spread(s), row.decimals));
    }
    const auto syscall_row = [&](const char* name, auto figure) {
        table.push_back({name, {}});
        for (const auto& s : summary) table.back().cells.push_back(s.traced ? std::to_string(figure(s)) : "-");
    };
    syscall_row("host syscalls, distinct, all", [](const SystemSummary& s) { return s.syscalls_distinct; });
    syscall_row("  distinct, payload running", [](const SystemSummary& s) { return s.syscalls_distinct_payload; });
    syscall_row("  calls, payload running", [](const SystemSummary& s) { return s.syscalls_payload; });
    out << figure_table(columns, table, 32, 26);

    const SystemSummary* reference = nullptr;
    for (const auto& s : summary) {
        if (s.system == kQemuMicrovm && s.runs > 0) reference = &s;
    }
    if (reference != nullptr) {
        out << "\nratio to qemu-microvm (median / median; below 1 is cheaper):\n";
        const auto ratio = [](const Spread& a, const Spread& b) -> std::string {
            if (a.runs == 0 || b.runs == 0 || b.median == 0) return "-";
            char text[32];
            std::snprintf(text, sizeof text, "%.2f", a.median / b.median);
            return text;
        };
        for (const auto& s : summary) {
            if (&s == reference) continue;
            out << "  " << s.system << ": launch -> marker " << ratio(s.marker_ms, reference->marker_ms)
                << ", launch -> exit " << ratio(s.exit_ms, reference->exit_ms) << ", RSS "
                << ratio(s.overhead_rss_kib, reference->overhead_rss_kib) << ", PSS "
                << ratio(s.overhead_pss_kib, reference->overhead_pss_kib);
            if (is_vm_system(s.system))
                out << ", VM exits to marker " << ratio(s.exits_at_marker, reference->exits_at_marker);
            out << "\n";
        }
    }
    out << "\nWhat the figures mean (docs/benchmarks.md has the details):\n"
           "  launch: just before the bench starts the VMM or the container runtime; marker: the payload's\n"
           "    line ('"
        << setup.marker
        << "') read from its console or stdout; go-ahead: the bench has\n"
           "    sampled the system and sends the payload the line it waits for, after which it ends.\n"
           "  RSS/PSS: every process of the system (VMM or runtime + payload), from /proc/PID/smaps at the\n"
           "    marker, guest RAM left out (anonymous mappings at least half the guest's size).\n"
           "  guest RAM touched: the resident part of those mappings.\n"
           "  VM exits launch -> marker: KVM's own count of every exit (/sys/kernel/debug/kvm/PID-FD/exits)\n"
           "    at the marker, for every VMM alike ('-': debugfs not mounted). Whole run: keel's own counters.\n"
           "  host syscalls: one more, untimed run under 'strace -f': distinct syscalls of all the system's\n"
           "    processes; 'payload running': VMs from the first KVM_RUN on, containers only the payload's\n"
           "    own processes from its execve on -- the host-kernel surface the workload reaches.\n";
    return out.str();
}

nlohmann::json compare_report_json(const CompareSetup& setup, const std::vector<SystemSummary>& summary,
                                   const std::vector<CompareSample>& samples,
                                   const std::vector<CompareSyscalls>& syscalls) {
    nlohmann::json out;
    out["setup"] = {{"kernel", setup.kernel},
                    {"initrd", setup.initrd},
                    {"payload", setup.payload},
                    {"marker", setup.marker},
                    {"vcpus", setup.vcpus},
                    {"memory_mib", setup.memory_bytes >> 20},
                    {"runs", setup.runs},
                    {"systems", setup.systems},
                    {"host", setup.host},
                    {"emulated", setup.emulated},
                    {"vm_cmdline", setup.cmdline.empty() ? default_vm_cmdline(setup.payload) : setup.cmdline}};
    nlohmann::json systems = nlohmann::json::object();
    for (const auto& s : summary) {
        nlohmann::json entry;
        entry["runs"] = s.runs;
        for (const auto& row : rows()) entry[row.json_name] = spread_json(row.spread(s));
        if (s.traced) {
            entry["syscalls"] = {{"distinct", s.syscalls_distinct},
                                 {"distinct_payload_running", s.syscalls_distinct_payload},
                                 {"calls_payload_running", s.syscalls_payload}};
        } else {
            entry["syscalls"] = nullptr;
        }
        systems[s.system] = entry;
    }
    out["systems"] = systems;
    nlohmann::json runs = nlohmann::json::array();
    for (const auto& r : samples) {
        nlohmann::json run = {{"system", r.system},
                              {"run", r.run},
                              {"launch_to_marker_ms", r.marker_ms},
                              {"launch_to_exit_ms", r.exit_ms},
                              {"go_ahead_to_exit_ms", r.shutdown_ms},
                              {"overhead_rss_kib", r.overhead_rss_kib},
                              {"overhead_pss_kib", r.overhead_pss_kib},
                              {"guest_ram_touched_kib", r.guest_ram_rss_kib},
                              {"processes", r.processes}};
        const auto optional_count = [](const std::optional<uint64_t>& v) -> nlohmann::json {
            return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
        };
        run["vm_exits_to_marker"] = optional_count(r.exits_at_marker);
        run["vm_exits_to_vmm"] = optional_count(r.exits_to_vmm);
        run["vm_exits_whole_run"] = optional_count(r.exits_at_stop);
        runs.push_back(run);
    }
    out["runs"] = runs;
    nlohmann::json traced = nlohmann::json::object();
    for (const auto& t : syscalls) {
        traced[t.system] = {{"all", t.summary.all_calls},
                            {"payload_running", t.summary.window_calls},
                            {"payload_window_found", t.summary.window_found}};
    }
    out["syscalls"] = traced;
    return out;
}

}  // namespace keel::bench
