// The JSON side of the control API: Firecracker-format config files and the
// request bodies of every endpoint. Bad input must end in keel::Error,
// BodyError or ResourceError with a message; anything else (another
// exception, a crash, a sanitizer report) is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/api_request.h"
#include "api/config_file.h"
#include "api/json_body.h"
#include "api/vm_resources.h"
#include "common/error.h"

namespace {

using namespace keel::api;

template <class Parse>
void try_body(const nlohmann::json& body, Parse parse) {
    try {
        parse(body);
    } catch (const BodyError&) {
    } catch (const ResourceError&) {
    }
}

// One route, picked by the input's first byte, with the rest as its body;
// then the action's state check in every state.
void route(std::string_view text) {
    static constexpr std::string_view kPaths[] = {"/",
                                                  "/version",
                                                  "/machine-config",
                                                  "/vm/config",
                                                  "/vm",
                                                  "/metrics",
                                                  "/boot-source",
                                                  "/drives/rootfs",
                                                  "/network-interfaces/net1",
                                                  "/logger",
                                                  "/entropy",
                                                  "/actions",
                                                  "/drives/",
                                                  "/drives/a-b",
                                                  "/metrics?x=1",
                                                  "/actions/extra/segments"};
    static constexpr HttpMethod kMethods[] = {HttpMethod::Get, HttpMethod::Put, HttpMethod::Patch, HttpMethod::Delete};
    if (text.empty()) return;
    const auto pick = static_cast<uint8_t>(text[0]);
    HttpRequest request;
    request.method = kMethods[pick % 4];
    request.path = std::string(kPaths[(pick / 4) % std::size(kPaths)]);
    request.body = std::string(text.substr(1));
    const auto parsed = parse_api_request(request);
    if (const auto* action = std::get_if<ApiAction>(&parsed)) {
        (void)action_name(*action);
        for (const auto state : {VmState::NotStarted, VmState::Running, VmState::Paused}) {
            (void)check_vm_state(*action, state);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    route(text);
    try {
        const auto resources = parse_config_file(text);
        (void)resources.to_json().dump();
        try {
            (void)resources.to_vm_config();
        } catch (const ResourceError&) {
        }
    } catch (const keel::Error&) {
    }

    nlohmann::json body;
    try {
        body = parse_json(text);
    } catch (const BodyError&) {
        return 0;
    }
    VmResources resources;
    try_body(body, [&](const auto& b) { resources.set_boot_source(parse_boot_source(b)); });
    try_body(body, [&](const auto& b) { resources.put_drive(parse_drive(b)); });
    try_body(body, [&](const auto& b) { resources.put_network_interface(parse_network_interface(b)); });
    try_body(body, [&](const auto& b) { resources.set_machine_config(parse_machine_config(b)); });
    try_body(body,
             [&](const auto& b) { resources.set_machine_config(patch_machine_config(resources.machine_config(), b)); });
    try_body(body, [&](const auto& b) { resources.set_logger(parse_logger(b)); });
    try_body(body, [&](const auto& b) { resources.set_metrics(parse_metrics(b)); });
    try_body(body, [&](const auto& b) { parse_entropy(b); });
    (void)resources.to_json().dump();
    return 0;
}
