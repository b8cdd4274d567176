#pragma once

// Firecracker-style metrics: one JSON line per flush to the metrics file
// (counters as deltas since the previous line, like Firecracker's
// IncMetric; boot times and memory as they are), and keel's own GET /metrics
// in Prometheus or OpenMetrics text (everything cumulative). docs/api.md
// lists every field.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "api/api_request.h"
#include "common/fd.h"
#include "core/live_metrics.h"

namespace keel::api {

// API requests the VMM thread answered, by action_name(): how many, and how
// many of them got an error status.
struct RequestCount {
    uint64_t count = 0;
    uint64_t fails = 0;
};
using RequestCounts = std::map<std::string, RequestCount, std::less<>>;

void count_request(RequestCounts& counts, const ApiAction& action, const ApiResponse& response);

// Everything one metrics line or scrape reports.
struct MetricsSample {
    RequestCounts requests;
    LiveMetrics vm;  // empty before InstanceStart
    bool vm_started = false;
};

// One line of the metrics file: `now` minus `previous` for the counters.
[[nodiscard]] nlohmann::json metrics_line(const MetricsSample& now, const MetricsSample& previous,
                                          uint64_t utc_timestamp_ms);

// GET /metrics: the text exposition format (Prometheus 0.0.4), or OpenMetrics
// 1.0 (families without the _total suffix, `# EOF` at the end).
[[nodiscard]] std::string metrics_text(const MetricsSample& sample, bool openmetrics);
[[nodiscard]] const char* metrics_content_type(bool openmetrics);

// The metrics file (or named pipe), appended to. Opened when configured, so
// a bad path is the PUT /metrics request's error.
class MetricsFile {
public:
    explicit MetricsFile(const std::string& path);  // throws keel::Error
    // Writes metrics_line(now, previous sample) and remembers `now`. False
    // when the write failed (a full pipe: the line is dropped, as Firecracker does).
    bool write(const MetricsSample& now, uint64_t utc_timestamp_ms);
    [[nodiscard]] uint64_t lines_written() const { return m_lines; }

private:
    UniqueFd m_fd;
    std::string m_path;
    MetricsSample m_previous;
    uint64_t m_lines = 0;
};

[[nodiscard]] uint64_t utc_now_ms();

}  // namespace keel::api
