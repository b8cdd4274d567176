#pragma once

// The fields each request body may have, by Firecracker's schema name: the
// parsers check bodies against these lists, and a unit test checks
// docs/openapi.json against them, so the description cannot drift from
// what keel accepts.

#include <span>
#include <string_view>

namespace keel::api::schema {

inline constexpr std::string_view kBootSource[] = {"kernel_image_path", "initrd_path", "boot_args"};
inline constexpr std::string_view kDrive[] = {"drive_id",     "partuuid",     "is_root_device",
                                              "cache_type",   "is_read_only", "path_on_host",
                                              "rate_limiter", "io_engine",    "socket"};
inline constexpr std::string_view kPartialDrive[] = {"drive_id", "path_on_host", "rate_limiter"};
inline constexpr std::string_view kNetworkInterface[] = {"iface_id", "host_dev_name", "guest_mac", "rx_rate_limiter",
                                                         "tx_rate_limiter"};
inline constexpr std::string_view kPartialNetworkInterface[] = {"iface_id", "rx_rate_limiter", "tx_rate_limiter"};
inline constexpr std::string_view kMachineConfiguration[] = {"vcpu_count",   "mem_size_mib",      "smt",
                                                             "cpu_template", "track_dirty_pages", "huge_pages"};
inline constexpr std::string_view kLogger[] = {"log_path", "level", "show_level", "show_log_origin", "module"};
inline constexpr std::string_view kMetrics[] = {"metrics_path"};
inline constexpr std::string_view kEntropyDevice[] = {"rate_limiter"};
inline constexpr std::string_view kInstanceActionInfo[] = {"action_type"};
inline constexpr std::string_view kVm[] = {"state"};

struct BodySchema {
    std::string_view name;  // Firecracker's swagger definition name
    std::span<const std::string_view> fields;
};

inline constexpr BodySchema kBodySchemas[] = {
    {"BootSource", kBootSource},
    {"Drive", kDrive},
    {"PartialDrive", kPartialDrive},
    {"NetworkInterface", kNetworkInterface},
    {"PartialNetworkInterface", kPartialNetworkInterface},
    {"MachineConfiguration", kMachineConfiguration},
    {"Logger", kLogger},
    {"Metrics", kMetrics},
    {"EntropyDevice", kEntropyDevice},
    {"InstanceActionInfo", kInstanceActionInfo},
    {"Vm", kVm},
};

}  // namespace keel::api::schema
