#include "api/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>

#include "common/error.h"

namespace keel::api {

namespace {

using nlohmann::json;

// Firecracker's group and field prefix for each action's counters
// (src/vmm/src/logger/metrics.rs: GetRequestsMetrics, PutRequestsMetrics,
// PatchRequestsMetrics); keel's own where Firecracker has none.
struct RequestField {
    std::string_view action;
    std::string_view group;
    std::string_view field;
};
constexpr std::array kRequestFields{
    RequestField{"get_instance_info", "get_api_requests", "instance_info"},
    RequestField{"get_version", "get_api_requests", "vmm_version"},
    RequestField{"get_machine_config", "get_api_requests", "machine_cfg"},
    RequestField{"get_vm_config", "get_api_requests", "vm_config"},
    RequestField{"get_metrics", "get_api_requests", "metrics"},
    RequestField{"put_boot_source", "put_api_requests", "boot_source"},
    RequestField{"put_drive", "put_api_requests", "drive"},
    RequestField{"put_network_interface", "put_api_requests", "network"},
    RequestField{"put_machine_config", "put_api_requests", "machine_cfg"},
    RequestField{"put_logger", "put_api_requests", "logger"},
    RequestField{"put_metrics", "put_api_requests", "metrics"},
    RequestField{"put_entropy", "put_api_requests", "entropy"},
    RequestField{"instance_start", "put_api_requests", "actions"},
    RequestField{"send_ctrl_alt_del", "put_api_requests", "actions"},
    RequestField{"flush_metrics", "put_api_requests", "actions"},
    RequestField{"patch_drive", "patch_api_requests", "drive"},
    RequestField{"patch_network_interface", "patch_api_requests", "network"},
    RequestField{"patch_machine_config", "patch_api_requests", "machine_cfg"},
    RequestField{"pause_vm", "patch_api_requests", "vm"},
    RequestField{"resume_vm", "patch_api_requests", "vm"},
};

uint64_t delta(uint64_t now, uint64_t before) {
    return now >= before ? now - before : now;
}

RequestCount count_of(const RequestCounts& counts, std::string_view action) {
    const auto it = counts.find(action);
    return it == counts.end() ? RequestCount{} : it->second;
}

uint64_t counter_of(const std::vector<NamedCount>& counters, const std::string& name) {
    for (const auto& [key, value] : counters) {
        if (key == name) return value;
    }
    return 0;
}

const LiveDeviceCounts* device_named(const LiveMetrics& vm, const LiveDeviceCounts& like) {
    for (const auto& device : vm.devices) {
        if (device.type == like.type && device.name == like.name) return &device;
    }
    return nullptr;
}

// Counters that hold a level, not a count: reported as they are, never as deltas.
bool is_level(const std::string& counter) {
    return counter.ends_with("_max") || counter == "needs_reset";
}

json memory_json(const MemoryBreakdown& memory) {
    const auto kind = [](const MemoryKind& k) { return json{{"rss", k.rss_kib}, {"pss", k.pss_kib}}; };
    return {{"overhead", kind(memory.overhead())}, {"binary", kind(memory.binary)},
            {"libraries", kind(memory.libraries)}, {"heap", kind(memory.heap)},
            {"stacks", kind(memory.stacks)},       {"kvm", kind(memory.kvm)},
            {"other", kind(memory.other)},         {"guest_ram", kind(memory.guest_ram)}};
}

std::string escape_label(std::string_view value) {
    std::string out;
    for (const char c : value) {
        if (c == '\\' || c == '"') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

// Metric family names: [a-zA-Z_:][a-zA-Z0-9_:]*.
std::string metric_name(std::string_view text) {
    std::string out;
    for (const char c : text) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        out += ok ? c : '_';
    }
    return out;
}

class Exposition {
public:
    explicit Exposition(bool openmetrics) : m_openmetrics(openmetrics) {}

    // A family: counters get "_total" on their samples (and, in the
    // Prometheus format, on the family name too).
    void family(const std::string& name, const char* type, const std::string& help) {
        m_counter = std::string_view(type) == "counter";
        m_name = name;
        const std::string declared = m_counter && !m_openmetrics ? name + "_total" : name;
        m_out += "# HELP " + declared + " " + help + "\n";
        m_out += "# TYPE " + declared + " " + type + "\n";
    }
    void sample(const std::string& labels, double value) {
        m_out += m_name + (m_counter ? "_total" : "");
        if (!labels.empty()) m_out += "{" + labels + "}";
        char number[64];
        std::snprintf(number, sizeof number, " %.17g\n", value);
        m_out += number;
    }
    void sample(const std::string& labels, uint64_t value) {
        m_out += m_name + (m_counter ? "_total" : "");
        if (!labels.empty()) m_out += "{" + labels + "}";
        m_out += " " + std::to_string(value) + "\n";
    }
    std::string finish() {
        if (m_openmetrics) m_out += "# EOF\n";
        return std::move(m_out);
    }

private:
    bool m_openmetrics;
    bool m_counter = false;
    std::string m_name;
    std::string m_out;
};

std::string label(std::string_view key, std::string_view value) {
    return std::string(key) + "=\"" + escape_label(value) + "\"";
}

}  // namespace

void count_request(RequestCounts& counts, const ApiAction& action, const ApiResponse& response) {
    auto& count = counts[std::string(action_name(action))];
    ++count.count;
    if (response.status >= 400) ++count.fails;
}

json metrics_line(const MetricsSample& now, const MetricsSample& previous, uint64_t utc_timestamp_ms) {
    json line = {{"utc_timestamp_ms", utc_timestamp_ms},
                 {"get_api_requests", json::object()},
                 {"put_api_requests", json::object()},
                 {"patch_api_requests", json::object()}};
    for (const auto& f : kRequestFields) {
        auto& group = line[std::string(f.group)];
        const auto is_get = f.group == "get_api_requests";
        const std::string count_key = std::string(f.field) + "_count";
        const std::string fails_key = std::string(f.field) + "_fails";
        if (!group.contains(count_key)) group[count_key] = 0;
        if (!is_get && !group.contains(fails_key)) group[fails_key] = 0;
        const auto a = count_of(now.requests, f.action), b = count_of(previous.requests, f.action);
        group[count_key] = group[count_key].get<uint64_t>() + delta(a.count, b.count);
        if (!is_get) group[fails_key] = group[fails_key].get<uint64_t>() + delta(a.fails, b.fails);
    }
    if (!now.vm_started) return line;
    auto& vcpu = line["vcpu"] = json::object();
    for (const auto& [name, value] : now.vm.vcpu) vcpu[name] = delta(value, counter_of(previous.vm.vcpu, name));
    for (const auto& device : now.vm.devices) {
        const auto* before = device_named(previous.vm, device);
        auto& out = line[device.type + "_" + device.name] = json::object();
        for (const auto& [name, value] : device.counters) {
            out[name] = is_level(name) || !before ? value : delta(value, counter_of(before->counters, name));
        }
    }
    auto& boot = line["boot_ms"] = json::object();
    for (const auto& [name, ms] : now.vm.boot_ms) boot[name] = ms;
    line["memory_kib"] = memory_json(now.vm.memory);
    line["vm_paused"] = now.vm.paused;
    return line;
}

std::string metrics_text(const MetricsSample& sample, bool openmetrics) {
    Exposition out(openmetrics);
    out.family("keel_api_requests", "counter", "API requests answered by the VMM thread, by action.");
    for (const auto& [action, count] : sample.requests) out.sample(label("action", action), count.count);
    out.family("keel_api_request_failures", "counter", "API requests answered with an error status, by action.");
    for (const auto& [action, count] : sample.requests) out.sample(label("action", action), count.fails);
    out.family("keel_vm_started", "gauge", "1 once InstanceStart (or the command line) started the VM.");
    out.sample("", uint64_t{sample.vm_started ? 1U : 0U});
    if (!sample.vm_started) return out.finish();
    out.family("keel_vm_paused", "gauge", "1 while the VM is paused.");
    out.sample("", uint64_t{sample.vm.paused ? 1U : 0U});
    out.family("keel_vcpu_exits", "counter",
               "VM exits that reached keel, summed over vCPUs, by kind (exits: all of them).");
    for (const auto& [name, value] : sample.vm.vcpu) out.sample(label("kind", name), value);
    // One family per device type and counter: keel_block_read_bytes_total{device="rootfs"}.
    std::map<std::string, std::vector<std::pair<std::string, uint64_t>>> families;
    for (const auto& device : sample.vm.devices) {
        for (const auto& [name, value] : device.counters) {
            families[device.type + "\n" + name].emplace_back(device.name, value);
        }
    }
    for (const auto& [key, samples] : families) {
        const auto split = key.find('\n');
        const std::string type = key.substr(0, split), counter = key.substr(split + 1);
        const bool level = is_level(counter);
        out.family(metric_name("keel_" + type + "_" + counter), level ? "gauge" : "counter",
                   "virtio " + type + " device counter " + counter + ".");
        for (const auto& [device, value] : samples) out.sample(label("device", device), value);
    }
    out.family("keel_boot_seconds", "gauge",
               "When each boot phase and guest boot-timer mark happened, since keel started.");
    for (const auto& [phase, ms] : sample.vm.boot_ms) out.sample(label("phase", phase), ms / 1000.0);
    out.family("keel_memory_bytes", "gauge",
               "keel's resident memory by part (overhead: all but guest RAM), RSS and PSS, from /proc/self/smaps.");
    const auto& m = sample.vm.memory;
    const std::vector<std::pair<const char*, MemoryKind>> parts{
        {"overhead", m.overhead()}, {"binary", m.binary}, {"libraries", m.libraries}, {"heap", m.heap},
        {"stacks", m.stacks},       {"kvm", m.kvm},       {"other", m.other},         {"guest_ram", m.guest_ram}};
    for (const auto& [part, kind] : parts) {
        out.sample(label("part", part) + "," + label("measure", "rss"), kind.rss_kib * 1024);
        out.sample(label("part", part) + "," + label("measure", "pss"), kind.pss_kib * 1024);
    }
    return out.finish();
}

const char* metrics_content_type(bool openmetrics) {
    return openmetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                       : "text/plain; version=0.0.4; charset=utf-8";
}

MetricsFile::MetricsFile(const std::string& path)
    : m_fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600)), m_path(path) {
    if (!m_fd.valid()) {
        throw Error("Metrics error: cannot open metrics file '" + path + "': " + std::strerror(errno));
    }
}

bool MetricsFile::write(const MetricsSample& now, uint64_t utc_timestamp_ms) {
    const std::string text = metrics_line(now, m_previous, utc_timestamp_ms).dump() + "\n";
    m_previous = now;
    const ssize_t n = ::write(m_fd.get(), text.data(), text.size());
    if (n != static_cast<ssize_t>(text.size())) return false;
    ++m_lines;
    return true;
}

uint64_t utc_now_ms() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

}  // namespace keel::api
