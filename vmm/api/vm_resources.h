#pragma once

// The VM a Firecracker-style client describes, piece by piece (PUT
// /boot-source, /drives/{id}, /machine-config, ...) or all at once (a config
// file): Firecracker's schemas and field names, its defaults, its rules
// (one root drive, unique MACs, replace-by-id) and its error messages, mapped
// onto keel's one VmConfig. What keel does not have (rate limiters, vhost-user,
// SMT, huge pages, dirty-page tracking) is refused by name, never ignored.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/vm_config.h"

namespace keel::api {

// A request that is well formed but that the VM cannot take; what() is
// Firecracker's VmmActionError text ("Drive config error: ...").
class ResourceError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct BootSource {
    std::string kernel_image_path{};
    std::optional<std::string> initrd_path{};
    std::optional<std::string> boot_args{};  // absent: keel's default command line
};

enum class CacheType : uint8_t { Unsafe, Writeback };
enum class IoEngine : uint8_t { Sync, Async };

struct Drive {
    std::string drive_id{};
    bool is_root_device = false;
    std::optional<std::string> partuuid{};
    CacheType cache_type = CacheType::Unsafe;
    bool is_read_only = false;
    std::string path_on_host{};
    IoEngine io_engine = IoEngine::Sync;
};

struct NetworkInterface {
    std::string iface_id{};
    std::string host_dev_name{};
    std::optional<std::string> guest_mac{};
};

struct MachineConfig {
    uint32_t vcpu_count = 1;
    uint64_t mem_size_mib = 128;
    bool smt = false;
    bool track_dirty_pages = false;
    std::string huge_pages = "None";
};

struct LoggerConfig {
    std::optional<std::string> log_path{};
    std::optional<std::string> level{};  // Off, Error, Warning, Info, Debug, Trace
    bool show_level = false;
    bool show_log_origin = false;
};

struct MetricsConfig {
    std::string metrics_path{};
};

// The bodies, checked against Firecracker's schemas. Throw BodyError.
[[nodiscard]] BootSource parse_boot_source(const nlohmann::json& body);
[[nodiscard]] Drive parse_drive(const nlohmann::json& body);
[[nodiscard]] NetworkInterface parse_network_interface(const nlohmann::json& body);
[[nodiscard]] MachineConfig parse_machine_config(const nlohmann::json& body);  // PUT: unset fields default
// PATCH: only the fields present change; at least one must be.
[[nodiscard]] MachineConfig patch_machine_config(const MachineConfig& current, const nlohmann::json& body);
[[nodiscard]] LoggerConfig parse_logger(const nlohmann::json& body);
[[nodiscard]] MetricsConfig parse_metrics(const nlohmann::json& body);
void parse_entropy(const nlohmann::json& body);

[[nodiscard]] nlohmann::json to_json(const MachineConfig& config);

class VmResources {
public:
    // A VM given on the command line, as GET /vm/config shows it. No checks:
    // the command line's were made. A NIC
    // on an inherited TAP fd has host_dev_name "fd:N". Names match the
    // devices': a disk without an id is "blkN", a NIC "netN".
    [[nodiscard]] static VmResources describe(const VmConfig& config);

    // Each checks what Firecracker checks when the request arrives (files
    // open, one root drive, unique MACs, vCPU and memory bounds) and throws
    // ResourceError. A drive or interface with an id already present replaces it.
    void set_boot_source(BootSource source);
    void put_drive(Drive drive);
    void put_network_interface(NetworkInterface nic);
    void set_machine_config(const MachineConfig& config);
    void set_entropy() { m_entropy = true; }
    void set_logger(LoggerConfig logger) { m_logger = std::move(logger); }
    void set_metrics(MetricsConfig metrics);
    // After a PATCH /drives/{id} the running VM made: what GET /vm/config shows.
    void update_drive_path(const std::string& drive_id, const std::string& path);

    [[nodiscard]] const MachineConfig& machine_config() const { return m_machine; }
    [[nodiscard]] const std::optional<LoggerConfig>& logger() const { return m_logger; }
    [[nodiscard]] const std::optional<MetricsConfig>& metrics() const { return m_metrics; }

    // GET /vm/config: Firecracker's VmmConfig shape, absent parts null.
    [[nodiscard]] nlohmann::json to_json() const;

    // The VM to build. Throws ResourceError without a boot source. The root
    // drive becomes vda and the command line gets root= and ro/rw for it, as
    // Firecracker does.
    [[nodiscard]] VmConfig to_vm_config() const;

private:
    std::optional<BootSource> m_boot_source;
    std::vector<Drive> m_drives;
    std::vector<NetworkInterface> m_nics;
    MachineConfig m_machine;
    bool m_entropy = false;
    std::optional<LoggerConfig> m_logger;
    std::optional<MetricsConfig> m_metrics;
};

}  // namespace keel::api
