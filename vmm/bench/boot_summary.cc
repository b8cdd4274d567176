#include "bench/boot_summary.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <sstream>

namespace keel::bench {
namespace {

// The memory kinds of keel's statistics, in report order.
constexpr std::array<const char*, 8> kMemoryKinds{"overhead", "binary", "libraries", "heap",
                                                  "stacks",   "kvm",    "other",     "guest_ram_touched"};

// Figures keyed by name, in the order names were first seen.
class Collector {
public:
    void add(const std::string& name, double value) {
        auto [it, inserted] = m_index.try_emplace(name, m_values.size());
        if (inserted) m_values.emplace_back(name, std::vector<double>{});
        m_values[it->second].second.push_back(value);
    }
    [[nodiscard]] std::vector<std::pair<std::string, Spread>> spreads() const {
        std::vector<std::pair<std::string, Spread>> out;
        for (const auto& [name, values] : m_values) out.emplace_back(name, spread_of(values));
        return out;
    }

private:
    std::map<std::string, size_t> m_index;
    std::vector<std::pair<std::string, std::vector<double>>> m_values;
};

nlohmann::json spreads_json(const std::vector<std::pair<std::string, Spread>>& spreads) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [name, s] : spreads) out[name] = spread_json(s);
    return out;
}

std::string fixed(double v, int decimals) {
    char text[32];
    std::snprintf(text, sizeof text, "%.*f", decimals, v);
    return text;
}

void row(std::ostringstream& out, const std::string& name, const Spread& s, int decimals, size_t runs) {
    char line[200];
    std::snprintf(
        line, sizeof line, "  %-34s %11s %11s %11s%s\n", name.c_str(), fixed(s.min, decimals).c_str(),
        fixed(s.median, decimals).c_str(), fixed(s.max, decimals).c_str(),
        s.runs == runs ? "" : ("   (" + std::to_string(s.runs) + " of " + std::to_string(runs) + " runs)").c_str());
    out << line;
}

}  // namespace

Spread spread_of(std::vector<double> values) {
    Spread s;
    s.runs = values.size();
    if (values.empty()) return s;
    std::sort(values.begin(), values.end());
    s.min = values.front();
    s.max = values.back();
    const size_t n = values.size();
    s.median = n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    return s;
}

BootSummary summarize(const std::vector<BootSample>& samples) {
    BootSummary summary;
    summary.runs = samples.size();
    Collector events;
    Collector exits;
    Collector rss;
    Collector pss;
    for (const BootSample& sample : samples) {
        // A mark the guest writes twice keeps its first time.
        std::map<std::string, bool> seen;
        for (const auto& [name, ms] : sample.events) {
            if (!seen.emplace(name, true).second) continue;
            events.add(name, ms);
        }
        exits.add("exits to keel", static_cast<double>(sample.exits_to_keel));
        if (sample.kvm_exits) exits.add("exits (all, KVM)", static_cast<double>(*sample.kvm_exits));
        for (const auto& [reason, count] : sample.exits_by_reason) {
            exits.add("to keel: " + reason, static_cast<double>(count));
        }
        for (const char* kind : kMemoryKinds) {
            if (const auto it = sample.rss_kib.find(kind); it != sample.rss_kib.end()) {
                rss.add(kind, static_cast<double>(it->second));
            }
            if (const auto it = sample.pss_kib.find(kind); it != sample.pss_kib.end()) {
                pss.add(kind, static_cast<double>(it->second));
            }
        }
    }
    summary.events = events.spreads();
    std::stable_sort(summary.events.begin(), summary.events.end(),
                     [](const auto& a, const auto& b) { return a.second.median < b.second.median; });
    summary.exits = exits.spreads();
    // "exits to keel" and "exits (all, KVM)" first, then the reasons by name.
    std::stable_sort(summary.exits.begin(), summary.exits.end(), [](const auto& a, const auto& b) {
        const bool a_reason = a.first.starts_with("to keel: ");
        const bool b_reason = b.first.starts_with("to keel: ");
        return a_reason != b_reason ? b_reason : (a_reason && a.first < b.first);
    });
    summary.rss_kib = rss.spreads();
    summary.pss_kib = pss.spreads();
    return summary;
}

nlohmann::json boot_report_json(const BootBenchSetup& setup, const BootSummary& summary,
                                const std::vector<BootSample>& samples) {
    nlohmann::json j;
    j["benchmark"] = "keel bench boot";
    j["setup"] = {{"kernel", setup.kernel},         {"initrd", setup.initrd},       {"vcpus", setup.vcpus},
                  {"memory_mib", setup.memory_mib}, {"transport", setup.transport}, {"host", setup.host},
                  {"emulated", setup.emulated}};
    j["runs"] = summary.runs;
    j["times_ms_from_launch"] = spreads_json(summary.events);
    j["exits"] = spreads_json(summary.exits);
    j["memory_kib"] = {{"rss", spreads_json(summary.rss_kib)}, {"pss", spreads_json(summary.pss_kib)}};
    j["each_run"] = nlohmann::json::array();
    for (const BootSample& sample : samples) {
        nlohmann::json run;
        run["stop_reason"] = sample.stop_reason;
        run["events_ms"] = nlohmann::json::array();
        for (const auto& [name, ms] : sample.events) run["events_ms"].push_back({{"name", name}, {"ms", ms}});
        run["exits_to_keel"] = sample.exits_to_keel;
        run["exits_by_reason"] = sample.exits_by_reason;
        if (sample.kvm_exits) run["kvm_exits"] = *sample.kvm_exits;
        run["rss_kib"] = sample.rss_kib;
        run["pss_kib"] = sample.pss_kib;
        j["each_run"].push_back(run);
    }
    return j;
}

std::string boot_report_text(const BootBenchSetup& setup, const BootSummary& summary) {
    std::ostringstream out;
    out << "keel bench boot: " << summary.runs << " runs, a fresh keel process each; " << setup.vcpus << " vCPU"
        << (setup.vcpus == 1 ? "" : "s") << ", " << setup.memory_mib << " MiB, virtio-" << setup.transport << "\n";
    out << "  kernel " << setup.kernel << "\n";
    if (!setup.initrd.empty()) out << "  initrd " << setup.initrd << "\n";
    out << "  host: " << setup.host << "\n";
    if (setup.emulated) {
        out << "EMULATED: keel ran in an L1 Linux under QEMU TCG (scripts/kvm-sandbox); absolute times are\n"
               "meaningless, only counts and the ratios within one run mean anything.\n";
    }
    char header[200];
    std::snprintf(header, sizeof header, "\n%-36s %11s %11s %11s\n", "time from launch (ms)", "min", "median", "max");
    out << header;
    for (const auto& [name, s] : summary.events) row(out, name, s, 2, summary.runs);
    std::snprintf(header, sizeof header, "\n%-36s %11s %11s %11s\n", "VM exits", "min", "median", "max");
    out << header;
    for (const auto& [name, s] : summary.exits) row(out, name, s, 0, summary.runs);
    std::snprintf(header, sizeof header, "\n%-36s %11s %11s %11s\n", "VMM memory at guest stop, RSS (KiB)", "min",
                  "median", "max");
    out << header;
    for (const auto& [name, s] : summary.rss_kib) {
        row(out, name == "overhead" ? "overhead (all but guest RAM)" : name, s, 0, summary.runs);
    }
    std::snprintf(header, sizeof header, "\n%-36s %11s %11s %11s\n", "VMM memory at guest stop, PSS (KiB)", "min",
                  "median", "max");
    out << header;
    for (const auto& [name, s] : summary.pss_kib) {
        row(out, name == "overhead" ? "overhead (all but guest RAM)" : name, s, 0, summary.runs);
    }
    return out.str();
}

std::string spread_cell(const Spread& s, int decimals) {
    if (s.runs == 0) return "-";
    char text[96];
    if (s.min == s.max) {
        std::snprintf(text, sizeof text, "%.*f", decimals, s.median);
    } else {
        std::snprintf(text, sizeof text, "%.*f [%.*f-%.*f]", decimals, s.median, decimals, s.min, decimals, s.max);
    }
    return text;
}

nlohmann::json spread_json(const Spread& s) {
    if (s.runs == 0) return nullptr;
    return {{"min", s.min}, {"median", s.median}, {"max", s.max}, {"runs", s.runs}};
}

}  // namespace keel::bench
