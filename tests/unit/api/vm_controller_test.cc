#include "api/vm_controller.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "scratch_file.h"

using namespace keel;
using namespace keel::api;
using Catch::Matchers::Contains;
using keel::test::ScratchFile;
using nlohmann::json;

namespace {

ApiResponse send(VmController& controller, const std::string& method, const std::string& path,
                 const std::string& body = "") {
    HttpRequest request;
    request.method = method == "GET" ? HttpMethod::Get : method == "PUT" ? HttpMethod::Put : HttpMethod::Patch;
    request.path = path;
    request.body = body;
    auto parsed = parse_api_request(request);
    if (auto* refused = std::get_if<ApiResponse>(&parsed)) return *refused;
    return controller.handle(std::get<ApiAction>(parsed));
}

std::string fault_of(const ApiResponse& response) {
    return json::parse(response.body).at("fault_message").get<std::string>();
}

}  // namespace

TEST_CASE("controller: requests before InstanceStart describe the VM that GET /vm/config shows", "[api][controller]") {
    const ScratchFile kernel("controller-kernel");
    const ScratchFile disk("controller-disk");
    VmController controller({}, {});
    const auto info = json::parse(send(controller, "GET", "/").body);
    CHECK(info["state"] == "Not started");
    CHECK(info["app_name"] == "keel");
    CHECK(json::parse(send(controller, "GET", "/version").body).contains("firecracker_version"));

    CHECK(send(controller, "PUT", "/boot-source", json{{"kernel_image_path", kernel.path}}.dump()).status == 204);
    CHECK(
        send(controller, "PUT", "/drives/rootfs",
             json{{"drive_id", "rootfs"}, {"path_on_host", disk.path}, {"is_root_device", true}, {"is_read_only", true}}
                 .dump())
            .status == 204);
    CHECK(send(controller, "PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 256})").status == 204);
    CHECK(send(controller, "PATCH", "/machine-config", R"({"mem_size_mib": 512})").status == 204);
    CHECK(send(controller, "PUT", "/entropy", "{}").status == 204);

    const auto config = json::parse(send(controller, "GET", "/vm/config").body);
    CHECK(config["boot-source"]["kernel_image_path"] == kernel.path);
    CHECK(config["drives"][0]["drive_id"] == "rootfs");
    CHECK(config["machine-config"]["vcpu_count"] == 2);
    CHECK(config["machine-config"]["mem_size_mib"] == 512);
    CHECK(config["entropy"].is_object());
    CHECK(json::parse(send(controller, "GET", "/machine-config").body)["mem_size_mib"] == 512);
    CHECK(controller.state() == VmState::NotStarted);
}

TEST_CASE("controller: a refused request changes nothing and says why", "[api][controller]") {
    VmController controller({}, {});
    auto r = send(controller, "PUT", "/machine-config", R"({"vcpu_count": 0, "mem_size_mib": 256})");
    CHECK(r.status == 400);
    CHECK_THAT(fault_of(r), Contains("vCPUs"));
    CHECK(json::parse(send(controller, "GET", "/machine-config").body)["vcpu_count"] == 1);

    r = send(controller, "PUT", "/boot-source", R"({"kernel_image_path": "/nonexistent/vmlinux"})");
    CHECK(r.status == 400);
    CHECK_THAT(fault_of(r), Contains("The kernel file cannot be opened"));

    r = send(controller, "PUT", "/metrics", R"({"metrics_path": "/nonexistent/dir/m.json"})");
    CHECK(r.status == 400);
    CHECK_THAT(fault_of(r), Contains("cannot open metrics file '/nonexistent/dir/m.json'"));

    // Runtime actions wait for a running VM.
    for (const auto& [method, path, body] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"PATCH", "/vm", R"({"state": "Paused"})"},
             {"PATCH", "/vm", R"({"state": "Resumed"})"},
             {"PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})"},
             {"PUT", "/actions", R"({"action_type": "FlushMetrics"})"}}) {
        r = send(controller, method, path, body);
        INFO(method << " " << path << " " << body);
        CHECK(r.status == 400);
        CHECK(fault_of(r) == "The requested operation is not supported before starting the microVM.");
    }
}

TEST_CASE("controller: InstanceStart that cannot build the VM answers 400 and the VM stays configurable",
          "[api][controller]") {
    VmController controller({}, {});
    auto r = send(controller, "PUT", "/actions", R"({"action_type": "InstanceStart"})");
    CHECK(r.status == 400);
    CHECK(fault_of(r) == "Start microvm error: Cannot start microvm without kernel configuration.");

    // A kernel that opens but is no kernel: the loader refuses it before KVM is touched.
    const ScratchFile not_a_kernel("controller-not-a-kernel", std::string(4096, 'x'));
    REQUIRE(send(controller, "PUT", "/boot-source", json{{"kernel_image_path", not_a_kernel.path}}.dump()).status ==
            204);
    r = send(controller, "PUT", "/actions", R"({"action_type": "InstanceStart"})");
    CHECK(r.status == 400);
    CHECK_THAT(fault_of(r), Contains("Start microvm error: ") && Contains(not_a_kernel.path));
    CHECK(controller.state() == VmState::NotStarted);
    CHECK(controller.machine() == nullptr);
    CHECK(send(controller, "PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})").status == 204);
}

TEST_CASE("controller: PUT /logger goes through the logging hook, whose error is the fault", "[api][controller]") {
    std::vector<std::string> paths;
    VmControllerOptions options;
    options.configure_logger = [&](const LoggerConfig& logger) {
        paths.push_back(logger.log_path.value_or(""));
        if (logger.log_path == "/nonexistent/keel.log") throw Error("cannot open log file '/nonexistent/keel.log'");
    };
    VmController controller({}, std::move(options));
    CHECK(send(controller, "PUT", "/logger", R"({"log_path": "/tmp/keel.log", "level": "Info"})").status == 204);
    const auto r = send(controller, "PUT", "/logger", R"({"log_path": "/nonexistent/keel.log"})");
    CHECK(r.status == 400);
    CHECK(fault_of(r) == "cannot open log file '/nonexistent/keel.log'");
    CHECK(paths == std::vector<std::string>{"/tmp/keel.log", "/nonexistent/keel.log"});
}

TEST_CASE("controller: PUT /metrics opens the file once, GET /metrics answers before the start too",
          "[api][controller][metrics]") {
    const ScratchFile metrics("controller-metrics", "");
    VmController controller({}, {});
    CHECK(send(controller, "PUT", "/metrics", json{{"metrics_path", metrics.path}}.dump()).status == 204);
    const auto again = send(controller, "PUT", "/metrics", json{{"metrics_path", metrics.path}}.dump());
    CHECK(again.status == 400);
    CHECK_THAT(fault_of(again), Contains("Reinitialization of metrics not allowed"));

    HttpRequest get;
    get.method = HttpMethod::Get;
    get.path = "/metrics";
    const auto text = controller.handle(std::get<ApiAction>(parse_api_request(get)));
    CHECK(text.status == 200);
    CHECK_THAT(text.content_type, Contains("text/plain"));
    // The two PUTs, one of them failed, are counted.
    CHECK_THAT(text.body, Contains("keel_api_requests_total{action=\"put_metrics\"} 2"));
    CHECK_THAT(text.body, Contains("keel_api_request_failures_total{action=\"put_metrics\"} 1"));
    CHECK_THAT(text.body, Contains("keel_vm_started 0"));

    // The periodic flush writes a line as soon as a file is configured.
    controller.flush_metrics();
    std::ifstream in(metrics.path);
    std::string line;
    REQUIRE(std::getline(in, line));
    CHECK(json::parse(line)["put_api_requests"]["metrics_count"] == 2);
    CHECK(json::parse(line)["put_api_requests"]["metrics_fails"] == 1);
}
