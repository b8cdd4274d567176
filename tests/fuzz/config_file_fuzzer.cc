// libFuzzer target: the fuzz bytes are a --config-file (Firecracker's JSON
// VM description). api_body_fuzzer feeds the same parser among many; this
// one is dedicated to it and checks what a config file promises:
//   - bad input ends in keel::Error whose message is one line starting with
//     "config file" (any other exception escapes and is reported);
//   - a file keel accepts describes the VM it runs: its GET /vm/config form
//     (to_json) is itself a config file keel accepts, describing the same VM
//     (parse, print, parse again, print again: the same text);
//   - the VmConfig keel boots from it has one disk per drive, one NIC per
//     network interface and a command line that starts with the boot_args
//     (the default when absent), or is refused with
//     ResourceError.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "api/config_file.h"
#include "api/vm_resources.h"
#include "common/error.h"
#include "core/vm_config.h"
#include "fuzz_input.h"

namespace {

using keel::fuzz::check;
using namespace keel::api;

void check_message(const std::exception& e) {
    const std::string_view message = e.what();
    check(message.starts_with("config file"));
    check(message.find('\n') == std::string_view::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    VmResources resources;
    try {
        resources = parse_config_file(text);
    } catch (const keel::Error& e) {
        check_message(e);
        return 0;
    }
    const nlohmann::json described = resources.to_json();
    const std::string printed = described.dump();
    VmResources again;
    try {
        again = parse_config_file(printed);
    } catch (const keel::Error&) {
        check(false);  // keel refused its own description of an accepted file
    }
    check(again.to_json().dump() == printed);

    try {
        const keel::VmConfig config = resources.to_vm_config();
        check(config.disks.size() == described.at("drives").size());
        const auto& nics = described.at("network-interfaces");
        check(config.nets.size() == (nics.is_array() ? nics.size() : 0));
        const auto& boot = described.at("boot-source");
        const auto args = boot.contains("boot_args") && boot.at("boot_args").is_string()
                              ? boot.at("boot_args").get<std::string>()
                              : std::string(keel::VmConfig::kDefaultCmdline);
        check(config.cmdline.starts_with(args));
    } catch (const ResourceError&) {
    }
    return 0;
}
