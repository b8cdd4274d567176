// libFuzzer target: the OCI seccomp profile keel bench compare reads (Podman's
// default, or any file of that format put in its place). Any JSON -- or none --
// must end as a set of calls or a keel::Error, never a crash or an exception
// of another kind; the calls are always the ABI's.

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "bench/syscall_surface.h"
#include "common/error.h"
#include "fuzz_input.h"

using keel::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    // The first byte picks the capabilities: none, or Podman's defaults.
    const std::set<std::string> none;
    const auto& capabilities = (data[0] & 1) != 0 ? keel::bench::podman_default_capabilities() : none;
    static const std::set<std::string> abi{"read", "write", "chroot", "bpf", "socket", "mount", "kexec_load"};
    const auto profile = nlohmann::json::parse(data + 1, data + size, nullptr, false);
    if (profile.is_discarded()) return 0;
    try {
        for (const auto& call : keel::bench::profile_allowed_calls(profile, capabilities, abi)) {
            check(abi.contains(call));
        }
    } catch (const keel::Error&) {
        // A profile not of the format: the bench notes it and goes on.
    }
    return 0;
}
