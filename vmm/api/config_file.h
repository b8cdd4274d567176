#pragma once

// `--config-file FILE`: Firecracker's JSON config format (the shape of GET
// /vm/config) read into the same VmResources the API fills request by request.

#include <string>
#include <string_view>

#include "api/vm_resources.h"

namespace keel::api {

// The largest config file keel reads. Firecracker's own cap is far higher, but
// a VM with every device keel has is a few KiB.
inline constexpr size_t kMaxConfigFileBytes = size_t{1024} * 1024;

// Parses config file text. `boot-source` and `drives` are required, as in
// Firecracker; unknown top-level keys are ignored as Firecracker does, but a
// section keel does not implement (balloon, vsock, mmds-config, ...) that is
// not null is refused by name. Throws keel::Error with one line naming the
// section: "config file: drives[1]: missing field `is_root_device`".
[[nodiscard]] VmResources parse_config_file(std::string_view text);

// Reads and parses FILE; errors name it.
[[nodiscard]] VmResources load_config_file(const std::string& path);

}  // namespace keel::api
