#include "bench/legacy_report.h"

#include <cstdio>
#include <functional>
#include <sstream>

#include "bench/report_table.h"

namespace keel::bench {
namespace {

using Figure = std::function<double(const LegacySample&)>;

Spread spread_over(const std::vector<const LegacySample*>& runs, const Figure& figure) {
    std::vector<double> values;
    values.reserve(runs.size());
    for (const auto* sample : runs) values.push_back(figure(*sample));
    return spread_of(std::move(values));
}

struct Row {
    const char* name;
    const char* json_name;
    Spread LegacySystemSummary::*spread;
    int decimals;
};

const std::vector<Row>& rows() {
    static const std::vector<Row> table{
        {"launch -> HTTP 200, ms", "launch_to_http_200_ms", &LegacySystemSummary::http_ms, 1},
        {"launch -> exit, ms", "launch_to_exit_ms", &LegacySystemSummary::exit_ms, 1},
        {"stop -> exit, ms", "stop_to_exit_ms", &LegacySystemSummary::stop_ms, 1},
        {"VMM/runtime+service RSS, KiB", "overhead_rss_kib", &LegacySystemSummary::overhead_rss_kib, 0},
        {"VMM/runtime+service PSS, KiB", "overhead_pss_kib", &LegacySystemSummary::overhead_pss_kib, 0},
        {"guest RAM touched, KiB", "guest_ram_touched_kib", &LegacySystemSummary::guest_ram_rss_kib, 0},
        {"host processes", "processes", &LegacySystemSummary::processes, 0},
        {"HTTP tries to the first 200", "http_tries", &LegacySystemSummary::http_attempts, 0},
    };
    return table;
}

std::string ratio(const Spread& a, const Spread& b) {
    if (a.runs == 0 || b.runs == 0 || b.median == 0) return "-";
    char text[32];
    std::snprintf(text, sizeof text, "%.2f", a.median / b.median);
    return text;
}

}  // namespace

std::vector<LegacySystemSummary> summarize_legacy(const std::vector<LegacySample>& samples) {
    std::vector<LegacySystemSummary> out;
    for (const std::string system : {kLegacyKeel, kLegacyCrun}) {
        std::vector<const LegacySample*> runs;
        for (const auto& sample : samples) {
            if (sample.system == system) runs.push_back(&sample);
        }
        if (runs.empty()) continue;
        const auto kib = [](uint64_t LegacySample::*field) {
            return [field](const LegacySample& r) { return static_cast<double>(r.*field); };
        };
        LegacySystemSummary s;
        s.system = system;
        s.runs = runs.size();
        s.http_ms = spread_over(runs, [](const LegacySample& r) { return r.http_ms; });
        s.exit_ms = spread_over(runs, [](const LegacySample& r) { return r.exit_ms; });
        s.stop_ms = spread_over(runs, [](const LegacySample& r) { return r.stop_ms; });
        s.overhead_rss_kib = spread_over(runs, kib(&LegacySample::overhead_rss_kib));
        s.overhead_pss_kib = spread_over(runs, kib(&LegacySample::overhead_pss_kib));
        if (system == kLegacyKeel) s.guest_ram_rss_kib = spread_over(runs, kib(&LegacySample::guest_ram_rss_kib));
        s.processes = spread_over(runs, [](const LegacySample& r) { return static_cast<double>(r.processes); });
        s.http_attempts = spread_over(runs, [](const LegacySample& r) { return static_cast<double>(r.http_attempts); });
        out.push_back(std::move(s));
    }
    return out;
}

std::string legacy_report_text(const LegacySetup& setup, const std::vector<LegacySystemSummary>& summary) {
    std::ostringstream out;
    out << "keel bench legacy: " << setup.runs << " runs of each system, interleaved\n";
    out << "image " << setup.image_dir << " (lighttpd serving '" << setup.page_marker << "')\n";
    out << "keel: " << setup.vcpus << " vCPU" << (setup.vcpus == 1 ? "" : "s") << ", " << (setup.memory_bytes >> 20)
        << " MiB, a fresh copy of rootfs.ext4 per run; crun: the image's files, read-only, tmpfs on /run, /tmp, "
           "/var/log\n";
    out << "host: " << setup.host << "\n";
    if (setup.emulated) out << kEmulatedHostWarning;
    std::vector<std::string> columns;
    for (const auto& s : summary) columns.push_back(s.system);
    std::vector<TableRow> table;
    for (const auto& row : rows()) {
        table.push_back({row.name, {}});
        for (const auto& s : summary) table.back().cells.push_back(spread_cell(s.*row.spread, row.decimals));
    }
    out << figure_table(columns, table, 32, 28);
    const LegacySystemSummary* keel = nullptr;
    const LegacySystemSummary* crun = nullptr;
    for (const auto& s : summary) (s.system == kLegacyKeel ? keel : crun) = &s;
    if (keel != nullptr && crun != nullptr) {
        out << "\nkeel / crun (median / median): launch -> HTTP 200 " << ratio(keel->http_ms, crun->http_ms)
            << ", launch -> exit " << ratio(keel->exit_ms, crun->exit_ms) << ", RSS "
            << ratio(keel->overhead_rss_kib, crun->overhead_rss_kib) << ", PSS "
            << ratio(keel->overhead_pss_kib, crun->overhead_pss_kib) << "\n";
    }
    out << "\nWhat the figures mean (docs/benchmarks.md has the details):\n"
           "  launch: just before the bench starts 'keel run' or 'crun run'. HTTP 200: the first reply\n"
           "    with status 200 carrying the page marker, to GET / from the bench's network namespace\n"
           "    (a try every 100 ms, 250 ms to connect). stop: keel's API gets SendCtrlAltDel (the\n"
           "    guest's sysvinit shuts down and powers off), or 'crun kill ID TERM' is started; exit: the\n"
           "    'keel run' or 'crun run' process ended.\n"
           "  RSS/PSS: every host process of the system at the first 200, from /proc/PID/smaps -- keel\n"
           "    without guest RAM; crun and lighttpd. guest RAM touched: the resident part of the guest's\n"
           "    RAM, where the VM's kernel, init and lighttpd live (the container's are in its RSS/PSS).\n";
    return out.str();
}

nlohmann::json legacy_report_json(const LegacySetup& setup, const std::vector<LegacySystemSummary>& summary,
                                  const std::vector<LegacySample>& samples) {
    nlohmann::json out;
    out["setup"] = {{"image_dir", setup.image_dir}, {"page_marker", setup.page_marker},
                    {"vcpus", setup.vcpus},         {"memory_mib", setup.memory_bytes >> 20},
                    {"runs", setup.runs},           {"host", setup.host},
                    {"emulated", setup.emulated},   {"container_writable", legacy_writable_paths()}};
    nlohmann::json systems = nlohmann::json::object();
    for (const auto& s : summary) {
        nlohmann::json entry{{"runs", s.runs}};
        for (const auto& row : rows()) entry[row.json_name] = spread_json(s.*row.spread);
        systems[s.system] = entry;
    }
    out["systems"] = systems;
    nlohmann::json runs = nlohmann::json::array();
    for (const auto& r : samples) {
        nlohmann::json run{{"system", r.system},
                           {"run", r.run},
                           {"launch_to_http_200_ms", r.http_ms},
                           {"launch_to_exit_ms", r.exit_ms},
                           {"stop_to_exit_ms", r.stop_ms},
                           {"http_tries", r.http_attempts},
                           {"overhead_rss_kib", r.overhead_rss_kib},
                           {"overhead_pss_kib", r.overhead_pss_kib},
                           {"processes", r.processes}};
        if (r.system == kLegacyKeel) {
            run["guest_ram_touched_kib"] = r.guest_ram_rss_kib;
            run["stop_reason"] = r.stop_reason;
        }
        runs.push_back(run);
    }
    out["runs"] = runs;
    return out;
}

}  // namespace keel::bench
