#include "api/metrics.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "common/error.h"

using namespace keel;
using namespace keel::api;
using Catch::Matchers::Contains;
using Catch::Matchers::EndsWith;
using nlohmann::json;

namespace {

MetricsSample running_vm(uint64_t io_out, uint64_t read_bytes, uint64_t in_flight_max) {
    MetricsSample sample;
    sample.vm_started = true;
    sample.vm.vcpu = {{"exit_io_in", 1}, {"exit_io_out", io_out}, {"exits", io_out + 1}};
    sample.vm.devices = {{"block", "rootfs", {{"read_bytes", read_bytes}, {"in_flight_max", in_flight_max}}},
                         {"entropy", "rng", {{"requests", 3}}}};
    sample.vm.boot_ms = {{"kernel loaded", 1.5}, {"guest mmio 123", 120.25}};
    sample.vm.memory.heap = {100, 90};
    sample.vm.memory.guest_ram = {4096, 4096};
    return sample;
}

}  // namespace

TEST_CASE("metrics: request counts land in Firecracker's groups and fields, errors as fails", "[api][metrics]") {
    RequestCounts counts;
    count_request(counts, PutDrive{}, ApiResponse{204});
    count_request(counts, PutDrive{}, fault("Drive config error"));
    count_request(counts, InstanceStart{}, ApiResponse{204});
    count_request(counts, SendCtrlAltDel{}, ApiResponse{204});
    count_request(counts, GetInstanceInfo{}, json_response({}));
    count_request(counts, PauseVm{}, ApiResponse{204});
    const auto line = metrics_line(MetricsSample{counts, {}, false}, MetricsSample{}, 1234);
    CHECK(line["utc_timestamp_ms"] == 1234);
    CHECK(line["put_api_requests"]["drive_count"] == 2);
    CHECK(line["put_api_requests"]["drive_fails"] == 1);
    CHECK(line["put_api_requests"]["actions_count"] == 2);  // InstanceStart and SendCtrlAltDel
    CHECK(line["put_api_requests"]["actions_fails"] == 0);
    CHECK(line["get_api_requests"]["instance_info_count"] == 1);
    CHECK_FALSE(line["get_api_requests"].contains("instance_info_fails"));
    CHECK(line["patch_api_requests"]["vm_count"] == 1);
    // Fields with nothing to count are there, at 0, as in Firecracker's lines.
    CHECK(line["put_api_requests"]["boot_source_count"] == 0);
    // No VM yet: no VM sections.
    CHECK_FALSE(line.contains("vcpu"));
}

TEST_CASE("metrics: each line counts since the previous one, levels and times are as they are", "[api][metrics]") {
    const auto first = running_vm(10, 4096, 2);
    auto second = running_vm(25, 4096 + 512, 1);
    count_request(second.requests, FlushMetrics{}, ApiResponse{204});
    const auto line = metrics_line(second, first, 99);
    CHECK(line["vcpu"]["exit_io_out"] == 15);
    CHECK(line["vcpu"]["exit_io_in"] == 0);
    CHECK(line["block_rootfs"]["read_bytes"] == 512);
    CHECK(line["block_rootfs"]["in_flight_max"] == 1);  // a level: not a difference
    CHECK(line["entropy_rng"]["requests"] == 0);
    CHECK(line["put_api_requests"]["actions_count"] == 1);
    CHECK(line["boot_ms"]["guest mmio 123"] == 120.25);
    CHECK(line["memory_kib"]["heap"]["rss"] == 100);
    CHECK(line["memory_kib"]["guest_ram"]["rss"] == 4096);
    CHECK(line["memory_kib"]["overhead"]["rss"] == 100);
    // The first line after the start counts from zero.
    CHECK(metrics_line(first, MetricsSample{}, 1)["vcpu"]["exit_io_out"] == 10);
}

TEST_CASE("metrics: GET /metrics in Prometheus text and in OpenMetrics", "[api][metrics]") {
    auto sample = running_vm(10, 4096, 2);
    count_request(sample.requests, PutDrive{}, fault("x"));
    const auto text = metrics_text(sample, false);
    INFO(text);
    CHECK_THAT(text, Contains("# TYPE keel_api_requests_total counter\n"));
    CHECK_THAT(text, Contains("keel_api_requests_total{action=\"put_drive\"} 1\n"));
    CHECK_THAT(text, Contains("keel_api_request_failures_total{action=\"put_drive\"} 1\n"));
    CHECK_THAT(text, Contains("keel_vcpu_exits_total{kind=\"exit_io_out\"} 10\n"));
    CHECK_THAT(text, Contains("keel_block_read_bytes_total{device=\"rootfs\"} 4096\n"));
    CHECK_THAT(text,
               Contains("# TYPE keel_block_in_flight_max gauge\nkeel_block_in_flight_max{device=\"rootfs\"} 2\n"));
    CHECK_THAT(text, Contains("keel_boot_seconds{phase=\"guest mmio 123\"} 0.12025"));
    CHECK_THAT(text, Contains("keel_memory_bytes{part=\"heap\",measure=\"rss\"} 102400\n"));
    CHECK_THAT(text, Contains("keel_vm_started 1\n"));
    CHECK_FALSE(text.ends_with("# EOF\n"));
    // Every line is a comment or a sample "name{labels} value".
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        INFO(line);
        CHECK((line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line.starts_with("keel_")));
    }

    const auto open = metrics_text(sample, true);
    CHECK_THAT(open, Contains("# TYPE keel_api_requests counter\n"));
    CHECK_THAT(open, Contains("keel_api_requests_total{action=\"put_drive\"} 1\n"));
    CHECK_THAT(open, EndsWith("# EOF\n"));
    CHECK_THAT(metrics_content_type(true), Contains("application/openmetrics-text"));
    CHECK_THAT(metrics_content_type(false), Contains("text/plain; version=0.0.4"));

    // Before the VM starts only the API's own families are there.
    const auto before = metrics_text(MetricsSample{}, false);
    CHECK_THAT(before, Contains("keel_vm_started 0\n"));
    CHECK_THAT(before, !Contains("keel_vcpu_exits"));
}

TEST_CASE("metrics: label values are escaped", "[api][metrics]") {
    MetricsSample sample;
    sample.requests["odd\"action\\\n"] = {1, 0};
    CHECK_THAT(metrics_text(sample, false), Contains(R"(keel_api_requests_total{action="odd\"action\\\n"} 1)"));
}

TEST_CASE("metrics file: one JSON line per write, appended, and a path that cannot open is the error",
          "[api][metrics]") {
    const std::string path = "/tmp/keel-metrics-test-" + std::to_string(::getpid()) + ".json";
    std::remove(path.c_str());
    {
        MetricsFile file(path);
        CHECK(file.write(running_vm(10, 0, 0), 1));
        CHECK(file.write(running_vm(30, 0, 0), 2));
        CHECK(file.lines_written() == 2);
    }
    std::ifstream in(path);
    std::string first, second, extra;
    std::getline(in, first);
    std::getline(in, second);
    CHECK_FALSE(std::getline(in, extra));
    CHECK(json::parse(first)["vcpu"]["exit_io_out"] == 10);
    CHECK(json::parse(second)["vcpu"]["exit_io_out"] == 20);
    std::remove(path.c_str());
    CHECK_THROWS_WITH(MetricsFile("/nonexistent/dir/m.json"),
                      Contains("cannot open metrics file '/nonexistent/dir/m.json'"));
}
