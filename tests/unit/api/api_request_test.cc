#include "api/api_request.h"

#include <catch2/catch.hpp>

#include "api/json_body.h"

using namespace keel::api;
using Catch::Matchers::Equals;

namespace {

HttpRequest request(HttpMethod method, std::string path, std::string body = "") {
    HttpRequest r;
    r.method = method;
    r.path = std::move(path);
    r.body = std::move(body);
    return r;
}

ApiAction action_of(const HttpRequest& r) {
    auto parsed = parse_api_request(r);
    if (const auto* response = std::get_if<ApiResponse>(&parsed)) FAIL("refused: " << response->body);
    return std::get<ApiAction>(parsed);
}

// The fault_message of a refused request (and that it is a 400 with JSON).
std::string fault_of(const HttpRequest& r) {
    auto parsed = parse_api_request(r);
    REQUIRE(std::holds_alternative<ApiResponse>(parsed));
    const auto& response = std::get<ApiResponse>(parsed);
    CHECK(response.status == 400);
    CHECK(response.content_type == "application/json");
    const auto body = parse_json(response.body);
    REQUIRE(body.size() == 1);
    return body.at("fault_message").get<std::string>();
}

}  // namespace

TEST_CASE("every Firecracker route maps to its action", "[api][routes]") {
    using enum HttpMethod;
    CHECK(std::holds_alternative<GetInstanceInfo>(action_of(request(Get, "/"))));
    CHECK(std::holds_alternative<GetVersion>(action_of(request(Get, "/version"))));
    CHECK(std::holds_alternative<GetMachineConfig>(action_of(request(Get, "/machine-config"))));
    CHECK(std::holds_alternative<GetVmConfig>(action_of(request(Get, "/vm/config"))));
    CHECK(std::holds_alternative<GetMetrics>(action_of(request(Get, "/metrics"))));
    auto with_accept = request(Get, "/metrics");
    with_accept.headers.emplace_back("Accept", "application/openmetrics-text; version=1.0.0");
    CHECK(std::get<GetMetrics>(action_of(with_accept)).openmetrics);

    const auto boot = action_of(request(Put, "/boot-source", R"({"kernel_image_path": "vmlinux"})"));
    CHECK(std::get<PutBootSource>(boot).source.kernel_image_path == "vmlinux");
    const auto drive = action_of(
        request(Put, "/drives/rootfs", R"({"drive_id": "rootfs", "path_on_host": "r.ext4", "is_root_device": true})"));
    CHECK(std::get<PutDrive>(drive).drive.is_root_device);
    const auto patch_drive =
        action_of(request(Patch, "/drives/rootfs", R"({"drive_id": "rootfs", "path_on_host": "new.ext4"})"));
    CHECK(std::get<PatchDrive>(patch_drive).path_on_host == "new.ext4");
    const auto nic =
        action_of(request(Put, "/network-interfaces/net1",
                          R"({"iface_id": "net1", "host_dev_name": "tap0", "guest_mac": "06:00:AC:10:00:02"})"));
    CHECK(std::get<PutNetworkInterface>(nic).nic.host_dev_name == "tap0");
    const auto machine = action_of(request(Put, "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 1024})"));
    CHECK(std::get<PutMachineConfig>(machine).config.vcpu_count == 2);
    CHECK(
        std::holds_alternative<PatchMachineConfig>(action_of(request(Patch, "/machine-config", R"({"smt": false})"))));
    CHECK(std::holds_alternative<PutLogger>(action_of(request(Put, "/logger", R"({"level": "Debug"})"))));
    CHECK(std::holds_alternative<PutMetrics>(action_of(request(Put, "/metrics", R"({"metrics_path": "m"})"))));
    CHECK(std::holds_alternative<PutEntropy>(action_of(request(Put, "/entropy", "{}"))));
    CHECK(std::holds_alternative<InstanceStart>(
        action_of(request(Put, "/actions", R"({"action_type": "InstanceStart"})"))));
    CHECK(std::holds_alternative<SendCtrlAltDel>(
        action_of(request(Put, "/actions", R"({"action_type": "SendCtrlAltDel"})"))));
    CHECK(std::holds_alternative<FlushMetrics>(
        action_of(request(Put, "/actions", R"({"action_type": "FlushMetrics"})"))));
    CHECK(std::holds_alternative<PauseVm>(action_of(request(Patch, "/vm", R"({"state": "Paused"})"))));
    CHECK(std::holds_alternative<ResumeVm>(action_of(request(Patch, "/vm", R"({"state": "Resumed"})"))));
    // Firecracker routes on the first segment only: /actions/x is /actions.
    CHECK(std::holds_alternative<FlushMetrics>(
        action_of(request(Put, "/actions/x", R"({"action_type": "FlushMetrics"})"))));
    CHECK(action_name(action_of(request(Get, "/version"))) == "get_version");
}

TEST_CASE("bad routes, methods and bodies get Firecracker's fault messages", "[api][routes]") {
    using enum HttpMethod;
    CHECK_THAT(fault_of(request(Get, "/foo")), Equals("Invalid request method and/or path: GET foo."));
    CHECK_THAT(fault_of(request(Get, "/vm")), Equals("Invalid request method and/or path: GET vm."));
    CHECK_THAT(fault_of(request(Delete, "/drives/x")), Equals("Invalid request method and/or path: DELETE drives."));
    CHECK_THAT(fault_of(request(Put, "/version", "{}")), Equals("Invalid request method and/or path: PUT version."));
    CHECK_THAT(fault_of(request(Patch, "/boot-source", "{}")),
               Equals("Invalid request method and/or path: PATCH boot-source."));
    CHECK_THAT(fault_of(request(Get, "/version", "{}")), Equals("GET request cannot have a body."));
    CHECK_THAT(fault_of(request(Put, "/boot-source")), Equals("Empty PUT request."));
    CHECK_THAT(fault_of(request(Patch, "/vm")), Equals("Empty PATCH request."));
    CHECK_THAT(fault_of(request(Patch, "/machine-config", "{}")), Equals("Empty PATCH request."));
    CHECK_THAT(fault_of(request(Put, "/drives", R"({"drive_id": "a"})")), Equals("The ID cannot be empty."));
    CHECK_THAT(fault_of(request(Put, "/drives/", R"({"drive_id": "a"})")), Equals("The ID cannot be empty."));
    CHECK_THAT(fault_of(request(Put, "/drives/a-b", R"({"drive_id": "a-b"})")),
               Equals("API Resource IDs can only contain alphanumeric characters and underscores."));
    CHECK_THAT(
        fault_of(request(Put, "/drives/a", R"({"drive_id": "b", "is_root_device": false, "path_on_host": "p"})")),
        Equals("The id from the path does not match the id from the body!"));
    CHECK_THAT(fault_of(request(Put, "/network-interfaces/a", R"({"iface_id": "b", "host_dev_name": "tap0"})")),
               Equals("The id from the path [a] does not match the id from the body [b]!"));
    CHECK_THAT(fault_of(request(Put, "/boot-source", R"({"kernel_image_path": "k", "foo": 1})")),
               Equals("An error occurred when deserializing the json body of a request: unknown field `foo`, "
                      "expected one of `kernel_image_path`, `initrd_path`, `boot_args`."));
    CHECK_THAT(fault_of(request(Put, "/machine-config", R"({"vcpu_count": "2", "mem_size_mib": 128})")),
               Equals("An error occurred when deserializing the json body of a request: invalid type: string \"2\", "
                      "expected u8."));
    CHECK_THAT(fault_of(request(Put, "/actions", R"({"action_type": "Reboot"})")),
               Equals("An error occurred when deserializing the json body of a request: unknown variant `Reboot`, "
                      "expected one of `FlushMetrics`, `InstanceStart`, `SendCtrlAltDel`."));
    CHECK_THAT(fault_of(request(Put, "/actions", "{}")),
               Equals("An error occurred when deserializing the json body of a request: missing field `action_type`."));
    CHECK_THAT(fault_of(request(Patch, "/vm", R"({"state": "Stopped"})")),
               Equals("An error occurred when deserializing the json body of a request: unknown variant `Stopped`, "
                      "expected `Paused` or `Resumed`."));
    CHECK_THAT(
        fault_of(request(Put, "/boot-source", "{\"kernel_image_path\": ")),
        Catch::Matchers::StartsWith("An error occurred when deserializing the json body of a request: parse error"));
    CHECK_THAT(fault_of(request(Patch, "/network-interfaces/n", R"({"iface_id": "n"})")),
               Equals("Empty PATCH request."));
    CHECK_THAT(fault_of(request(Patch, "/drives/d", R"({"drive_id": "d"})")), Equals("Empty PATCH request."));
}

TEST_CASE("configuration only before InstanceStart, runtime actions only after, reads always", "[api][routes]") {
    using enum HttpMethod;
    const auto message = [](const std::optional<ApiResponse>& response) {
        REQUIRE(response.has_value());
        CHECK(response->status == 400);
        return parse_json(response->body).at("fault_message").get<std::string>();
    };
    const auto put_boot = action_of(request(Put, "/boot-source", R"({"kernel_image_path": "k"})"));
    const auto start = action_of(request(Put, "/actions", R"({"action_type": "InstanceStart"})"));
    const auto pause = action_of(request(Patch, "/vm", R"({"state": "Paused"})"));
    const auto ctrl_alt_del = action_of(request(Put, "/actions", R"({"action_type": "SendCtrlAltDel"})"));
    const auto info = action_of(request(Get, "/"));
    CHECK_FALSE(check_vm_state(put_boot, VmState::NotStarted).has_value());
    CHECK_FALSE(check_vm_state(start, VmState::NotStarted).has_value());
    CHECK_THAT(message(check_vm_state(put_boot, VmState::Running)),
               Equals("The requested operation is not supported after starting the microVM."));
    CHECK_THAT(message(check_vm_state(start, VmState::Paused)),
               Equals("The requested operation is not supported after starting the microVM."));
    CHECK_THAT(message(check_vm_state(pause, VmState::NotStarted)),
               Equals("The requested operation is not supported before starting the microVM."));
    CHECK_THAT(message(check_vm_state(ctrl_alt_del, VmState::NotStarted)),
               Equals("The requested operation is not supported before starting the microVM."));
    CHECK_FALSE(check_vm_state(pause, VmState::Paused).has_value());  // idempotent, as in Firecracker
    for (const auto state : {VmState::NotStarted, VmState::Running, VmState::Paused}) {
        CHECK_FALSE(check_vm_state(info, state).has_value());
    }
    CHECK(state_name(VmState::NotStarted) == "Not started");
}

TEST_CASE("a fault that quotes bytes which are not UTF-8 is still valid JSON", "[api][routes]") {
    // nlohmann's parse error quotes what it last read; the fuzzer found this.
    const auto response = fault(std::string("parse error; last read: '\xea\x01'"));
    const auto body = parse_json(response.body);
    CHECK(body.at("fault_message").get<std::string>().find("\xef\xbf\xbd") != std::string::npos);  // U+FFFD
    auto r = request(HttpMethod::Put, "/boot-source", std::string("{\"kernel_image_path\": \"\xea\""));
    CHECK_THAT(fault_of(r), Catch::Matchers::StartsWith("An error occurred when deserializing"));
}
