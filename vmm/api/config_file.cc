#include "api/config_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "api/json_body.h"
#include "common/error.h"

namespace keel::api {

namespace {

using nlohmann::json;

// Sections of Firecracker's config that keel has no device or feature for.
constexpr std::string_view kUnsupportedSections[] = {"balloon", "vsock", "mmds-config",   "cpu-config",
                                                     "serial",  "pmem",  "memory-hotplug"};

// Runs `apply` and turns its BodyError or ResourceError into a keel::Error
// that names the section.
template <class Apply>
void in_section(const std::string& section, Apply apply) {
    try {
        apply();
    } catch (const BodyError& e) {
        throw Error("config file: " + section + ": " + e.what());
    } catch (const ResourceError& e) {
        throw Error("config file: " + section + ": " + e.what());
    }
}

const json* section(const json& config, std::string_view name) {
    const auto it = config.find(name);
    return it == config.end() || it->is_null() ? nullptr : &*it;
}

const json& required_array(const json& config, std::string_view name) {
    const auto* value = section(config, name);
    if (value == nullptr) throw Error("config file: missing field `" + std::string(name) + "`");
    if (!value->is_array()) {
        throw Error("config file: " + std::string(name) + ": invalid type: " + describe_json_value(*value) +
                    ", expected a sequence");
    }
    return *value;
}

}  // namespace

VmResources parse_config_file(std::string_view text) {
    json config;
    try {
        config = parse_json(text);
    } catch (const BodyError& e) {
        throw Error(std::string("config file: invalid JSON: ") + e.what());
    }
    if (!config.is_object()) {
        throw Error("config file: invalid type: " + describe_json_value(config) + ", expected struct VmmConfig");
    }
    for (const auto name : kUnsupportedSections) {
        if (section(config, name) != nullptr) {
            throw Error("config file: `" + std::string(name) + "` is not supported by keel");
        }
    }

    // Firecracker's order: logger, metrics, machine-config, boot-source, drives, network-interfaces, entropy.
    VmResources resources;
    if (const auto* logger = section(config, "logger")) {
        in_section("logger", [&] { resources.set_logger(parse_logger(*logger)); });
    }
    if (const auto* metrics = section(config, "metrics")) {
        in_section("metrics", [&] { resources.set_metrics(parse_metrics(*metrics)); });
    }
    if (const auto* machine = section(config, "machine-config")) {
        in_section("machine-config", [&] { resources.set_machine_config(parse_machine_config(*machine)); });
    }
    const auto* boot = section(config, "boot-source");
    if (boot == nullptr) throw Error("config file: missing field `boot-source`");
    in_section("boot-source", [&] { resources.set_boot_source(parse_boot_source(*boot)); });
    const auto& drives = required_array(config, "drives");
    for (size_t i = 0; i < drives.size(); ++i) {
        in_section("drives[" + std::to_string(i) + "]", [&] { resources.put_drive(parse_drive(drives[i])); });
    }
    if (section(config, "network-interfaces") != nullptr) {
        const auto& nics = required_array(config, "network-interfaces");
        for (size_t i = 0; i < nics.size(); ++i) {
            in_section("network-interfaces[" + std::to_string(i) + "]",
                       [&] { resources.put_network_interface(parse_network_interface(nics[i])); });
        }
    }
    if (const auto* entropy = section(config, "entropy")) {
        in_section("entropy", [&] {
            parse_entropy(*entropy);
            resources.set_entropy();
        });
    }
    return resources;
}

VmResources load_config_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open config file '" + path + "': " + std::strerror(errno));
    std::string text(kMaxConfigFileBytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    if (in.bad()) throw Error("cannot read config file '" + path + "': " + std::strerror(errno));
    text.resize(static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxConfigFileBytes) {
        throw Error("config file '" + path + "' is larger than " + std::to_string(kMaxConfigFileBytes) + " bytes");
    }
    try {
        return parse_config_file(text);
    } catch (const Error& e) {
        std::string message = e.what();
        constexpr std::string_view kPrefix = "config file: ";
        if (message.starts_with(kPrefix)) message.erase(0, kPrefix.size());
        throw Error("config file '" + path + "': " + message);
    }
}

}  // namespace keel::api
