#include "api/api_request.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include "api/body_schemas.h"
#include "api/json_body.h"

namespace keel::api {

namespace {

using nlohmann::json;

// Firecracker splits the path on '/' after the leading one and drops a
// trailing empty piece; only the first piece routes (and an id or "config"
// after it for the routes that take one).
std::vector<std::string> path_segments(std::string_view path) {
    if (const auto query = path.find('?'); query != std::string_view::npos) path = path.substr(0, query);
    if (path.starts_with('/')) path.remove_prefix(1);
    std::vector<std::string> segments;
    while (!path.empty()) {
        const auto slash = path.find('/');
        segments.emplace_back(path.substr(0, slash));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    return segments;
}

ApiResponse invalid_route(const HttpRequest& request, const std::string& first_segment) {
    return fault("Invalid request method and/or path: " + std::string(method_name(request.method)) + " " +
                 first_segment + ".");
}

// The id from the path: present, and letters, digits and '_' only (Firecracker's checked_id).
std::variant<std::string, ApiResponse> checked_id(const std::vector<std::string>& segments) {
    if (segments.size() < 2 || segments[1].empty()) return fault("The ID cannot be empty.");
    const auto& id = segments[1];
    const bool valid = std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isalnum(c) || c == '_'; });
    if (!valid) return fault("API Resource IDs can only contain alphanumeric characters and underscores.");
    return id;
}

ApiResponse deserialize_error(const std::string& message) {
    return fault("An error occurred when deserializing the json body of a request: " + message + ".");
}

// Parses the body and runs `make` on it; schema errors become Firecracker's 400.
template <class Make>
std::variant<ApiAction, ApiResponse> with_body(const HttpRequest& request, Make make) {
    try {
        return make(parse_json(request.body));
    } catch (const BodyError& e) {
        return deserialize_error(e.what());
    }
}

std::variant<ApiAction, ApiResponse> route_get(const HttpRequest& request, const std::vector<std::string>& segments) {
    const std::string first = segments.empty() ? "" : segments[0];
    if (first.empty()) return GetInstanceInfo{};
    if (first == "version") return GetVersion{};
    if (first == "machine-config") return GetMachineConfig{};
    if (first == "vm" && segments.size() == 2 && segments[1] == "config") return GetVmConfig{};
    if (first == "metrics") {
        const auto accept = request.header("Accept").value_or("");
        return GetMetrics{.openmetrics = accept.find("application/openmetrics-text") != std::string_view::npos};
    }
    return invalid_route(request, first);
}

std::variant<ApiAction, ApiResponse> put_drive(const HttpRequest& request, const std::vector<std::string>& segments) {
    auto id = checked_id(segments);
    if (auto* error = std::get_if<ApiResponse>(&id)) return *error;
    return with_body(request, [&](const json& body) -> std::variant<ApiAction, ApiResponse> {
        auto drive = parse_drive(body);
        if (drive.drive_id != std::get<std::string>(id)) {
            return fault("The id from the path does not match the id from the body!");
        }
        return PutDrive{std::move(drive)};
    });
}

std::variant<ApiAction, ApiResponse> patch_drive(const HttpRequest& request, const std::vector<std::string>& segments) {
    auto id = checked_id(segments);
    if (auto* error = std::get_if<ApiResponse>(&id)) return *error;
    return with_body(request, [&](const json& body) -> std::variant<ApiAction, ApiResponse> {
        const ObjectFields fields(body, "PartialDrive", schema::kPartialDrive);
        PatchDrive patch{.drive_id = fields.required_string("drive_id"),
                         .path_on_host = fields.optional_string("path_on_host")};
        if (fields.has("rate_limiter"))
            throw BodyError("`rate_limiter` is not supported: keel has no I/O rate limiter");
        if (patch.drive_id != std::get<std::string>(id)) {
            return fault("The id from the path does not match the id from the body!");
        }
        if (!patch.path_on_host) return fault("Empty PATCH request.");
        return patch;
    });
}

std::variant<ApiAction, ApiResponse> net_id_mismatch(const std::string& path_id, const std::string& body_id) {
    return fault("The id from the path [" + path_id + "] does not match the id from the body [" + body_id + "]!");
}

std::variant<ApiAction, ApiResponse> put_net(const HttpRequest& request, const std::vector<std::string>& segments) {
    auto id = checked_id(segments);
    if (auto* error = std::get_if<ApiResponse>(&id)) return *error;
    return with_body(request, [&](const json& body) -> std::variant<ApiAction, ApiResponse> {
        auto nic = parse_network_interface(body);
        if (nic.iface_id != std::get<std::string>(id)) return net_id_mismatch(std::get<std::string>(id), nic.iface_id);
        return PutNetworkInterface{std::move(nic)};
    });
}

std::variant<ApiAction, ApiResponse> patch_net(const HttpRequest& request, const std::vector<std::string>& segments) {
    auto id = checked_id(segments);
    if (auto* error = std::get_if<ApiResponse>(&id)) return *error;
    return with_body(request, [&](const json& body) -> std::variant<ApiAction, ApiResponse> {
        const ObjectFields fields(body, "PartialNetworkInterface", schema::kPartialNetworkInterface);
        const auto body_id = fields.required_string("iface_id");
        for (const char* limiter : {"rx_rate_limiter", "tx_rate_limiter"}) {
            if (fields.has(limiter)) {
                throw BodyError("`" + std::string(limiter) + "` is not supported: keel has no I/O rate limiter");
            }
        }
        if (body_id != std::get<std::string>(id)) return net_id_mismatch(std::get<std::string>(id), body_id);
        // Rate limiters are all a PATCH can change on an interface, and keel has none.
        return fault("Empty PATCH request.");
    });
}

std::variant<ApiAction, ApiResponse> put_action(const HttpRequest& request) {
    return with_body(request, [](const json& body) -> std::variant<ApiAction, ApiResponse> {
        const ObjectFields fields(body, "ActionBody", schema::kInstanceActionInfo);
        if (!fields.has("action_type")) throw BodyError("missing field `action_type`");
        const auto type = *fields.optional_variant("action_type", {"FlushMetrics", "InstanceStart", "SendCtrlAltDel"});
        if (type == "InstanceStart") return InstanceStart{};
        if (type == "SendCtrlAltDel") return SendCtrlAltDel{};
        return FlushMetrics{};
    });
}

std::variant<ApiAction, ApiResponse> route_put(const HttpRequest& request, const std::vector<std::string>& segments) {
    const std::string first = segments.empty() ? "" : segments[0];
    if (first == "boot-source") {
        return with_body(request, [](const json& body) -> ApiAction { return PutBootSource{parse_boot_source(body)}; });
    }
    if (first == "drives") return put_drive(request, segments);
    if (first == "network-interfaces") return put_net(request, segments);
    if (first == "machine-config") {
        return with_body(request,
                         [](const json& body) -> ApiAction { return PutMachineConfig{parse_machine_config(body)}; });
    }
    if (first == "logger") {
        return with_body(request, [](const json& body) -> ApiAction { return PutLogger{parse_logger(body)}; });
    }
    if (first == "metrics") {
        return with_body(request, [](const json& body) -> ApiAction { return PutMetrics{parse_metrics(body)}; });
    }
    if (first == "entropy") {
        return with_body(request, [](const json& body) -> ApiAction {
            parse_entropy(body);
            return PutEntropy{};
        });
    }
    if (first == "actions") return put_action(request);
    return invalid_route(request, first);
}

std::variant<ApiAction, ApiResponse> route_patch(const HttpRequest& request, const std::vector<std::string>& segments) {
    const std::string first = segments.empty() ? "" : segments[0];
    if (first == "drives") return patch_drive(request, segments);
    if (first == "network-interfaces") return patch_net(request, segments);
    if (first == "machine-config") {
        json body;
        try {
            body = parse_json(request.body);
            (void)patch_machine_config(MachineConfig{}, body);
        } catch (const BodyError& e) {
            const std::string message = e.what();
            return message == "Empty PATCH request." ? fault(message) : deserialize_error(message);
        }
        return PatchMachineConfig{std::move(body)};
    }
    if (first == "vm") {
        return with_body(request, [](const json& body) -> ApiAction {
            const ObjectFields fields(body, "Vm", schema::kVm);
            if (!fields.has("state")) throw BodyError("missing field `state`");
            if (*fields.optional_variant("state", {"Paused", "Resumed"}) == "Paused") return PauseVm{};
            return ResumeVm{};
        });
    }
    return invalid_route(request, first);
}

}  // namespace

// A message may quote the client's own bytes (a JSON parse error shows what it
// last read), which need not be UTF-8: such bytes become U+FFFD instead of
// making dump() throw.
std::string dump_lenient(const json& value) {
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

ApiResponse fault(std::string_view message, int status) {
    return {
        .status = status, .body = dump_lenient(json{{"fault_message", message}}), .content_type = "application/json"};
}

ApiResponse json_response(const json& body, int status) {
    return {.status = status, .body = dump_lenient(body), .content_type = "application/json"};
}

std::string_view state_name(VmState state) {
    switch (state) {
        case VmState::NotStarted:
            return "Not started";
        case VmState::Running:
            return "Running";
        case VmState::Paused:
            return "Paused";
    }
    return "Not started";
}

std::variant<ApiAction, ApiResponse> parse_api_request(const HttpRequest& request) {
    const auto segments = path_segments(request.path);
    const bool has_body = !request.body.empty();
    switch (request.method) {
        case HttpMethod::Get:
            if (has_body) return fault("GET request cannot have a body.");
            return route_get(request, segments);
        case HttpMethod::Put:
            if (!has_body) return fault("Empty PUT request.");
            return route_put(request, segments);
        case HttpMethod::Patch:
            if (!has_body) return fault("Empty PATCH request.");
            return route_patch(request, segments);
        case HttpMethod::Delete:
            break;
    }
    return invalid_route(request, segments.empty() ? "" : segments[0]);
}

namespace {

enum class Allowed : uint8_t { Always, BeforeStart, AfterStart };

struct AllowedWhen {
    Allowed operator()(const GetInstanceInfo&) const { return Allowed::Always; }
    Allowed operator()(const GetVersion&) const { return Allowed::Always; }
    Allowed operator()(const GetMachineConfig&) const { return Allowed::Always; }
    Allowed operator()(const GetVmConfig&) const { return Allowed::Always; }
    Allowed operator()(const GetMetrics&) const { return Allowed::Always; }
    Allowed operator()(const PutBootSource&) const { return Allowed::BeforeStart; }
    Allowed operator()(const PutDrive&) const { return Allowed::BeforeStart; }
    Allowed operator()(const PutNetworkInterface&) const { return Allowed::BeforeStart; }
    Allowed operator()(const PutMachineConfig&) const { return Allowed::BeforeStart; }
    Allowed operator()(const PatchMachineConfig&) const { return Allowed::BeforeStart; }
    Allowed operator()(const PutLogger&) const { return Allowed::BeforeStart; }
    Allowed operator()(const PutMetrics&) const { return Allowed::BeforeStart; }
    Allowed operator()(const PutEntropy&) const { return Allowed::BeforeStart; }
    Allowed operator()(const InstanceStart&) const { return Allowed::BeforeStart; }
    Allowed operator()(const PatchDrive&) const { return Allowed::AfterStart; }
    Allowed operator()(const PatchNetworkInterface&) const { return Allowed::AfterStart; }
    Allowed operator()(const SendCtrlAltDel&) const { return Allowed::AfterStart; }
    Allowed operator()(const FlushMetrics&) const { return Allowed::AfterStart; }
    Allowed operator()(const PauseVm&) const { return Allowed::AfterStart; }
    Allowed operator()(const ResumeVm&) const { return Allowed::AfterStart; }
};

struct ActionName {
    std::string_view operator()(const GetInstanceInfo&) const { return "get_instance_info"; }
    std::string_view operator()(const GetVersion&) const { return "get_version"; }
    std::string_view operator()(const GetMachineConfig&) const { return "get_machine_config"; }
    std::string_view operator()(const GetVmConfig&) const { return "get_vm_config"; }
    std::string_view operator()(const GetMetrics&) const { return "get_metrics"; }
    std::string_view operator()(const PutBootSource&) const { return "put_boot_source"; }
    std::string_view operator()(const PutDrive&) const { return "put_drive"; }
    std::string_view operator()(const PatchDrive&) const { return "patch_drive"; }
    std::string_view operator()(const PutNetworkInterface&) const { return "put_network_interface"; }
    std::string_view operator()(const PatchNetworkInterface&) const { return "patch_network_interface"; }
    std::string_view operator()(const PutMachineConfig&) const { return "put_machine_config"; }
    std::string_view operator()(const PatchMachineConfig&) const { return "patch_machine_config"; }
    std::string_view operator()(const PutLogger&) const { return "put_logger"; }
    std::string_view operator()(const PutMetrics&) const { return "put_metrics"; }
    std::string_view operator()(const PutEntropy&) const { return "put_entropy"; }
    std::string_view operator()(const InstanceStart&) const { return "instance_start"; }
    std::string_view operator()(const SendCtrlAltDel&) const { return "send_ctrl_alt_del"; }
    std::string_view operator()(const FlushMetrics&) const { return "flush_metrics"; }
    std::string_view operator()(const PauseVm&) const { return "pause_vm"; }
    std::string_view operator()(const ResumeVm&) const { return "resume_vm"; }
};

}  // namespace

std::optional<ApiResponse> check_vm_state(const ApiAction& action, VmState state) {
    const auto allowed = std::visit(AllowedWhen{}, action);
    if (allowed == Allowed::BeforeStart && state != VmState::NotStarted) {
        return fault("The requested operation is not supported after starting the microVM.");
    }
    if (allowed == Allowed::AfterStart && state == VmState::NotStarted) {
        return fault("The requested operation is not supported before starting the microVM.");
    }
    return std::nullopt;
}

std::string_view action_name(const ApiAction& action) {
    return std::visit(ActionName{}, action);
}

}  // namespace keel::api
