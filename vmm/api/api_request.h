#pragma once

// Firecracker's API routes: an HTTP request becomes one ApiAction with its
// body checked against its schema, or a 400 with Firecracker's own
// fault_message (src/firecracker/src/api_server/parsed_request.rs). No VM
// state here: whether the action is allowed now is check_vm_state()'s job.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>

#include "api/http_request.h"
#include "api/vm_resources.h"

namespace keel::api {

// What goes back on the socket.
struct ApiResponse {
    int status = 204;
    std::string body{};  // empty for 204
    std::string content_type = "application/json";
};

// {"fault_message": "..."} with `status`.
[[nodiscard]] ApiResponse fault(std::string_view message, int status = 400);
[[nodiscard]] ApiResponse json_response(const nlohmann::json& body, int status = 200);

enum class VmState : uint8_t { NotStarted, Running, Paused };
[[nodiscard]] std::string_view state_name(VmState state);  // Firecracker's: "Not started", "Running", "Paused"

struct GetInstanceInfo {};
struct GetVersion {};
struct GetMachineConfig {};
struct GetVmConfig {};
// keel's own: Prometheus text, or OpenMetrics when the client's Accept asks.
struct GetMetrics {
    bool openmetrics = false;
};
struct PutBootSource {
    BootSource source;
};
struct PutDrive {
    Drive drive;
};
struct PatchDrive {
    std::string drive_id;
    std::optional<std::string> path_on_host;
};
struct PutNetworkInterface {
    NetworkInterface nic;
};
struct PatchNetworkInterface {
    std::string iface_id;
};
struct PutMachineConfig {
    MachineConfig config;
};
struct PatchMachineConfig {
    nlohmann::json changes;  // checked against the schema; applied to the current config
};
struct PutLogger {
    LoggerConfig logger;
};
struct PutMetrics {
    MetricsConfig metrics;
};
struct PutEntropy {};
struct InstanceStart {};
struct SendCtrlAltDel {};
struct FlushMetrics {};
struct PauseVm {};
struct ResumeVm {};

using ApiAction =
    std::variant<GetInstanceInfo, GetVersion, GetMachineConfig, GetVmConfig, GetMetrics, PutBootSource, PutDrive,
                 PatchDrive, PutNetworkInterface, PatchNetworkInterface, PutMachineConfig, PatchMachineConfig,
                 PutLogger, PutMetrics, PutEntropy, InstanceStart, SendCtrlAltDel, FlushMetrics, PauseVm, ResumeVm>;

// The route and body of one request. Never throws on bad input: any problem
// is the ApiResponse to send.
[[nodiscard]] std::variant<ApiAction, ApiResponse> parse_api_request(const HttpRequest& request);

// Firecracker's rule for when each action may run: configuration before
// InstanceStart only, runtime actions after it only, reads always. nullopt
// when `action` is allowed in `state`, else the 400 to send.
[[nodiscard]] std::optional<ApiResponse> check_vm_state(const ApiAction& action, VmState state);

// A short name for counters and logs: "put_drive", "get_instance_info", ...
[[nodiscard]] std::string_view action_name(const ApiAction& action);

}  // namespace keel::api
