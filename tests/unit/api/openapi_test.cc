// docs/openapi.json against keel's routes and body fields: every documented
// operation routes to the action it names, every undocumented method on a
// documented path is refused, every body schema lists exactly the fields
// keel's parser accepts, and every action keel has is documented.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "api/api_request.h"
#include "api/body_schemas.h"

using namespace keel::api;
using nlohmann::json;

namespace {

json load_spec() {
    std::ifstream in(std::string(KEEL_SOURCE_DIR) + "/docs/openapi.json");
    REQUIRE(in);
    return json::parse(in);
}

HttpMethod method_of(const std::string& name) {
    if (name == "get") return HttpMethod::Get;
    if (name == "put") return HttpMethod::Put;
    return HttpMethod::Patch;
}

// "/drives/{drive_id}" with the id from the example body, or "x1".
std::string concrete_path(const std::string& path, const json& example) {
    const auto open = path.find('{');
    if (open == std::string::npos) return path;
    const auto name = path.substr(open + 1, path.find('}') - open - 1);
    const std::string id = example.is_object() && example.contains(name) ? example[name].get<std::string>() : "x1";
    return path.substr(0, open) + id;
}

std::variant<ApiAction, ApiResponse> route(HttpMethod method, const std::string& path, const std::string& body) {
    HttpRequest request;
    request.method = method;
    request.path = path;
    request.body = body;
    return parse_api_request(request);
}

std::set<std::string> words(const std::string& text) {
    std::set<std::string> out;
    std::istringstream in(text);
    for (std::string word; in >> word;) out.insert(word);
    return out;
}

}  // namespace

TEST_CASE("openapi: every body schema lists exactly the fields keel accepts", "[api][openapi]") {
    const auto schemas = load_spec()["components"]["schemas"];
    for (const auto& body : schema::kBodySchemas) {
        const std::string name(body.name);
        INFO(name);
        REQUIRE(schemas.contains(name));
        std::set<std::string> documented, accepted;
        for (const auto& [field, _] : schemas[name]["properties"].items()) documented.insert(field);
        for (const auto field : body.fields) accepted.emplace(field);
        CHECK(documented == accepted);
        CHECK(schemas[name]["additionalProperties"] == false);
    }
}

TEST_CASE("openapi: every documented operation routes to its action with its example body", "[api][openapi]") {
    const auto spec = load_spec();
    std::set<std::string> documented_actions;
    for (const auto& [path, item] : spec["paths"].items()) {
        for (const auto& [method, operation] : item.items()) {
            if (method == "parameters") continue;
            INFO(method << " " << path);
            const auto names = words(operation["x-keel-action"].get<std::string>());
            documented_actions.insert(names.begin(), names.end());
            json example;
            if (operation.contains("requestBody")) {
                example = operation["requestBody"]["content"]["application/json"]["example"];
            }
            // /actions and /vm: one request per value of the body's enum.
            std::vector<json> bodies{example};
            if (path == "/actions" || path == "/vm") {
                const std::string field = path == "/actions" ? "action_type" : "state";
                const auto ref =
                    operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].get<std::string>();
                const auto schema_name = ref.substr(ref.rfind('/') + 1);
                bodies.clear();
                for (const auto& value : spec["components"]["schemas"][schema_name]["properties"][field]["enum"]) {
                    bodies.push_back(json{{field, value}});
                }
            }
            for (const auto& body : bodies) {
                const auto routed =
                    route(method_of(method), concrete_path(path, example), body.is_null() ? "" : body.dump());
                INFO("body " << body.dump());
                if (operation["x-keel-status"] == "not-supported-yet" && path.starts_with("/network-interfaces")) {
                    CHECK(std::holds_alternative<ApiResponse>(routed));  // refused at parse time, as documented
                    continue;
                }
                REQUIRE(std::holds_alternative<ApiAction>(routed));
                CHECK(names.contains(std::string(action_name(std::get<ApiAction>(routed)))));
            }
        }
    }
    // Every action keel routes is documented (PatchNetworkInterface included, refused or not).
    std::set<std::string> keel_actions;
    const auto add = [&](const ApiAction& action) { keel_actions.emplace(action_name(action)); };
    add(GetInstanceInfo{}), add(GetVersion{}), add(GetMachineConfig{}), add(GetVmConfig{}), add(GetMetrics{});
    add(PutBootSource{}), add(PutDrive{}), add(PatchDrive{}), add(PutNetworkInterface{}), add(PatchNetworkInterface{});
    add(PutMachineConfig{}), add(PatchMachineConfig{}), add(PutLogger{}), add(PutMetrics{}), add(PutEntropy{});
    add(InstanceStart{}), add(SendCtrlAltDel{}), add(FlushMetrics{}), add(PauseVm{}), add(ResumeVm{});
    CHECK(std::variant_size_v<ApiAction> == keel_actions.size());
    CHECK(documented_actions == keel_actions);
}

TEST_CASE("openapi: methods a path does not document, and Firecracker paths keel lacks, are refused",
          "[api][openapi]") {
    const auto spec = load_spec();
    for (const auto& [path, item] : spec["paths"].items()) {
        for (const std::string method : {"get", "put", "patch"}) {
            if (item.contains(method)) continue;
            INFO(method << " " << path);
            const auto routed = route(method_of(method), concrete_path(path, {}), method == "get" ? "" : "{}");
            REQUIRE(std::holds_alternative<ApiResponse>(routed));
            CHECK(std::get<ApiResponse>(routed).status == 400);
        }
    }
    for (const auto& [path, why] : spec["x-keel-not-supported"].items()) {
        INFO(path << ": " << why.get<std::string>());
        for (const std::string method : {"get", "put", "patch"}) {
            const auto routed = route(method_of(method), concrete_path(path, {}), method == "get" ? "" : "{}");
            CHECK(std::holds_alternative<ApiResponse>(routed));
        }
    }
}
