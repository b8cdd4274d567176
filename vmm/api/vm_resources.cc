#include "api/vm_resources.h"

#include <fcntl.h>
#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "api/body_schemas.h"
#include "api/json_body.h"
#include "arch/x86_64/layout.h"

namespace keel::api {

namespace {

// Firecracker's `huge_pages` names ("Transparent" is keel's own) <-> keel's backing.
std::string huge_pages_name(GuestPageBacking backing) {
    switch (backing) {
        case GuestPageBacking::Hugetlb2M: return "2M";
        case GuestPageBacking::Transparent: return "Transparent";
        case GuestPageBacking::Normal: break;
    }
    return "None";
}

GuestPageBacking page_backing_of(const std::string& huge_pages) {
    if (huge_pages == "2M") return GuestPageBacking::Hugetlb2M;
    if (huge_pages == "Transparent") return GuestPageBacking::Transparent;
    return GuestPageBacking::Normal;
}

using nlohmann::json;

// serde's usize on a 64-bit host.
constexpr uint64_t kUsizeMax = UINT64_MAX;
// 1 TiB: far above any host this runs on, and mem_size_mib * MiB cannot wrap.
constexpr uint64_t kMaxMemoryMib = uint64_t{1} << 20;

// Firecracker's io::Error Display: "No such file or directory (os error 2)".
std::string os_error(int error) {
    return std::string(std::strerror(error)) + " (os error " + std::to_string(error) + ")";
}

// Empty when `path` opens for reading, else why not.
std::string open_failure(const std::string& path) {
    // O_NONBLOCK: a FIFO given as a kernel or drive must not block keel here.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return os_error(errno);
    ::close(fd);
    return {};
}

// keel has no rate limiter: a limiter a client asks for is refused, not ignored.
void refuse_rate_limiter(const ObjectFields& fields, std::string_view field) {
    if (fields.has(field)) {
        throw BodyError("`" + std::string(field) + "` is not supported: keel has no I/O rate limiter");
    }
}

// keel's device ids: [A-Za-z0-9_-]{1,32} (they name devices in logs and statistics).
void check_device_id(const std::string& id, std::string_view field) {
    const bool valid = !id.empty() && id.size() <= 32 && std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
    if (!valid) {
        throw BodyError("invalid value: string \"" + id + "\" for `" + std::string(field) +
                        "`, expected 1 to 32 letters, digits, '_' or '-'");
    }
}

json optional_to_json(const std::optional<std::string>& value) {
    return value ? json(*value) : json(nullptr);
}

}  // namespace

BootSource parse_boot_source(const json& body) {
    const ObjectFields fields(body, "BootSource", schema::kBootSource);
    return {.kernel_image_path = fields.required_string("kernel_image_path"),
            .initrd_path = fields.optional_string("initrd_path"),
            .boot_args = fields.optional_string("boot_args")};
}

Drive parse_drive(const json& body) {
    const ObjectFields fields(body, "BlockDeviceConfig",
                              schema::kDrive);
    Drive drive;
    drive.drive_id = fields.required_string("drive_id");
    check_device_id(drive.drive_id, "drive_id");
    drive.is_root_device = fields.required_bool("is_root_device");
    drive.partuuid = fields.optional_string("partuuid");
    if (fields.optional_variant("cache_type", {"Unsafe", "Writeback"}).value_or("Unsafe") == "Writeback") {
        drive.cache_type = CacheType::Writeback;
    }
    drive.is_read_only = fields.optional_bool("is_read_only").value_or(false);
    refuse_rate_limiter(fields, "rate_limiter");
    if (fields.optional_variant("io_engine", {"Sync", "Async"}).value_or("Sync") == "Async") {
        drive.io_engine = IoEngine::Async;
    }
    if (fields.has("socket")) throw BodyError("`socket` is not supported: keel has no vhost-user block devices");
    const auto path = fields.optional_string("path_on_host");
    if (!path) throw BodyError("missing field `path_on_host`");
    drive.path_on_host = *path;
    return drive;
}

NetworkInterface parse_network_interface(const json& body) {
    const ObjectFields fields(body, "NetworkInterfaceConfig",
                              schema::kNetworkInterface);
    NetworkInterface nic;
    nic.iface_id = fields.required_string("iface_id");
    check_device_id(nic.iface_id, "iface_id");
    nic.host_dev_name = fields.required_string("host_dev_name");
    if (nic.host_dev_name.empty() || nic.host_dev_name.size() >= IFNAMSIZ ||
        nic.host_dev_name.find_first_of("/ \t\n") != std::string::npos) {
        throw BodyError("invalid value: string \"" + nic.host_dev_name +
                        "\" for `host_dev_name`, expected a network interface name of 1 to 15 characters");
    }
    nic.guest_mac = fields.optional_string("guest_mac");
    if (nic.guest_mac) {
        const auto mac = net::parse_mac(*nic.guest_mac);
        const bool unicast = mac && ((*mac)[0] & 1) == 0 &&
                             std::any_of(mac->begin(), mac->end(), [](uint8_t octet) { return octet != 0; });
        if (!unicast) {
            throw BodyError("invalid value: string \"" + *nic.guest_mac +
                            "\" for `guest_mac`, expected a unicast MAC address (six hex octets)");
        }
    }
    refuse_rate_limiter(fields, "rx_rate_limiter");
    refuse_rate_limiter(fields, "tx_rate_limiter");
    return nic;
}

namespace {

constexpr auto& kMachineFields = schema::kMachineConfiguration;

// Applies the fields present in `fields` on top of `config`.
MachineConfig apply_machine_fields(MachineConfig config, const ObjectFields& fields) {
    if (const auto vcpus = fields.optional_unsigned("vcpu_count", UINT8_MAX, "u8")) {
        config.vcpu_count = static_cast<uint32_t>(*vcpus);
    }
    if (const auto mib = fields.optional_unsigned("mem_size_mib", kUsizeMax, "usize")) config.mem_size_mib = *mib;
    if (const auto smt = fields.optional_bool("smt")) config.smt = *smt;
    if (const auto track = fields.optional_bool("track_dirty_pages")) config.track_dirty_pages = *track;
    if (const auto pages = fields.optional_variant("huge_pages", {"None", "2M", "Transparent"})) {
        config.huge_pages = *pages;
    }
    const auto cpu_template =
        fields.optional_variant("cpu_template", {"C3", "T2", "T2S", "T2CL", "T2A", "V1N1", "None"});
    if (cpu_template && *cpu_template != "None") {
        throw BodyError("`cpu_template` " + *cpu_template + " is not supported: keel passes KVM's CPUID through");
    }
    return config;
}

}  // namespace

MachineConfig parse_machine_config(const json& body) {
    const ObjectFields fields(body, "MachineConfig", kMachineFields);
    (void)fields.required_unsigned("vcpu_count", UINT8_MAX, "u8");
    (void)fields.required_unsigned("mem_size_mib", kUsizeMax, "usize");
    return apply_machine_fields(MachineConfig{}, fields);
}

MachineConfig patch_machine_config(const MachineConfig& current, const json& body) {
    const ObjectFields fields(body, "MachineConfigUpdate", kMachineFields);
    bool any = false;
    for (const auto field : kMachineFields) any = any || fields.has(field);
    if (!any) throw BodyError("Empty PATCH request.");
    return apply_machine_fields(current, fields);
}

LoggerConfig parse_logger(const json& body) {
    const ObjectFields fields(body, "LoggerConfig", schema::kLogger);
    LoggerConfig logger;
    logger.log_path = fields.optional_string("log_path");
    // Firecracker also takes "Warn" and any letter case.
    if (const auto level = fields.optional_string("level")) {
        std::string lower(*level);
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        static constexpr std::pair<std::string_view, std::string_view> kLevels[] = {
            {"off", "Off"},   {"error", "Error"}, {"warning", "Warning"}, {"warn", "Warning"},
            {"info", "Info"}, {"debug", "Debug"}, {"trace", "Trace"}};
        const auto* found = std::find_if(std::begin(kLevels), std::end(kLevels),
                                         [&](const auto& entry) { return entry.first == lower; });
        if (found == std::end(kLevels)) {
            throw BodyError("unknown variant `" + *level +
                            "`, expected one of `Off`, `Error`, `Warning`, `Info`, `Debug`, `Trace`");
        }
        logger.level = std::string(found->second);
    }
    logger.show_level = fields.optional_bool("show_level").value_or(false);
    logger.show_log_origin = fields.optional_bool("show_log_origin").value_or(false);
    if (fields.has("module")) throw BodyError("`module` is not supported: keel's log has no per-module filter");
    return logger;
}

MetricsConfig parse_metrics(const json& body) {
    const ObjectFields fields(body, "MetricsConfig", schema::kMetrics);
    return {.metrics_path = fields.required_string("metrics_path")};
}

void parse_entropy(const json& body) {
    const ObjectFields fields(body, "EntropyDeviceConfig", schema::kEntropyDevice);
    refuse_rate_limiter(fields, "rate_limiter");
}

json to_json(const MachineConfig& config) {
    return {{"vcpu_count", config.vcpu_count},
            {"mem_size_mib", config.mem_size_mib},
            {"smt", config.smt},
            {"track_dirty_pages", config.track_dirty_pages},
            {"huge_pages", config.huge_pages}};
}

void VmResources::set_boot_source(BootSource source) {
    if (const auto why = open_failure(source.kernel_image_path); !why.empty()) {
        throw ResourceError("Boot source error: The kernel file cannot be opened: " + why);
    }
    if (source.initrd_path) {
        if (const auto why = open_failure(*source.initrd_path); !why.empty()) {
            throw ResourceError(
                "Boot source error: The initrd file cannot be opened due to invalid path or invalid permissions. " +
                why);
        }
    }
    m_boot_source = std::move(source);
}

void VmResources::put_drive(Drive drive) {
    if (const auto why = open_failure(drive.path_on_host); !why.empty()) {
        throw ResourceError("Drive config error: Unable to open the drive file '" + drive.path_on_host + "': " + why);
    }
    const auto same_id =
        std::find_if(m_drives.begin(), m_drives.end(), [&](const Drive& d) { return d.drive_id == drive.drive_id; });
    if (drive.is_root_device) {
        for (const auto& other : m_drives) {
            if (other.is_root_device && other.drive_id != drive.drive_id) {
                throw ResourceError("Drive config error: A root block device already exists!");
            }
        }
    }
    if (same_id != m_drives.end()) {
        *same_id = std::move(drive);
    } else {
        m_drives.push_back(std::move(drive));
    }
    // The root drive is vda, the others keep the order they came in.
    std::stable_partition(m_drives.begin(), m_drives.end(), [](const Drive& d) { return d.is_root_device; });
}

void VmResources::put_network_interface(NetworkInterface nic) {
    if (nic.guest_mac) {
        const auto mac = net::format_mac(*net::parse_mac(*nic.guest_mac));
        for (const auto& other : m_nics) {
            if (other.iface_id != nic.iface_id && other.guest_mac &&
                net::format_mac(*net::parse_mac(*other.guest_mac)) == mac) {
                throw ResourceError("Network config error: The MAC address is already in use: " + *nic.guest_mac);
            }
        }
    }
    for (const auto& other : m_nics) {
        if (other.iface_id != nic.iface_id && other.host_dev_name == nic.host_dev_name) {
            throw ResourceError("Network config error: The host device " + nic.host_dev_name +
                                " is already used by interface " + other.iface_id);
        }
    }
    const auto same_id = std::find_if(m_nics.begin(), m_nics.end(),
                                      [&](const NetworkInterface& n) { return n.iface_id == nic.iface_id; });
    if (same_id != m_nics.end()) {
        *same_id = std::move(nic);
    } else {
        m_nics.push_back(std::move(nic));
    }
}

void VmResources::set_machine_config(const MachineConfig& config) {
    if (config.vcpu_count < kMinVcpus || config.vcpu_count > x86::kMaxVcpus) {
        throw ResourceError("Machine config error: The number of vCPUs must be greater than 0 and at most " +
                            std::to_string(x86::kMaxVcpus) + ".");
    }
    if (config.mem_size_mib < kMinMemory / MiB) {
        throw ResourceError("Machine config error: The memory size (MiB) must be at least " +
                            std::to_string(kMinMemory / MiB) + ".");
    }
    if (config.mem_size_mib > kMaxMemoryMib) {
        throw ResourceError("Machine config error: The memory size (MiB) must be at most " +
                            std::to_string(kMaxMemoryMib) + ".");
    }
    if (config.smt) throw ResourceError("Machine config error: keel does not support SMT (`smt`: true).");
    if (config.track_dirty_pages) {
        throw ResourceError(
            "Machine config error: keel has no snapshots, so no dirty-page tracking "
            "(`track_dirty_pages`: true).");
    }
    if (config.huge_pages == "2M" && config.mem_size_mib % (kHugePageSize / MiB) != 0) {
        throw ResourceError("Machine config error: With `huge_pages`: \"2M\" the memory size (MiB) must be a "
                            "multiple of 2.");
    }
    m_machine = config;
}

void VmResources::set_metrics(MetricsConfig metrics) {
    if (m_metrics) {
        throw ResourceError(
            "Metrics error: Cannot initialize the metrics system due to bad user input: "
            "Reinitialization of metrics not allowed.");
    }
    m_metrics = std::move(metrics);
}

VmResources VmResources::describe(const VmConfig& config) {
    VmResources resources;
    resources.m_boot_source = BootSource{.kernel_image_path = config.kernel_path,
                                         .initrd_path = config.initrd_path.empty()
                                                            ? std::nullopt
                                                            : std::optional<std::string>(config.initrd_path),
                                         .boot_args = config.cmdline};
    for (size_t i = 0; i < config.disks.size(); ++i) {
        const auto& disk = config.disks[i];
        resources.m_drives.push_back(Drive{.drive_id = disk.id.empty() ? "blk" + std::to_string(i) : disk.id,
                                           .is_read_only = disk.read_only(),
                                           .path_on_host = disk.path,
                                           .io_engine = disk.io == block::DiskIoEngine::Uring ? IoEngine::Async
                                                                                              : IoEngine::Sync});
    }
    for (size_t i = 0; i < config.nets.size(); ++i) {
        const auto& nic = config.nets[i];
        resources.m_nics.push_back(NetworkInterface{
            .iface_id = nic.id.empty() ? "net" + std::to_string(i) : nic.id,
            .host_dev_name = nic.uses_fd() ? "fd:" + std::to_string(nic.tap_fd) : nic.tap_name,
            .guest_mac = nic.mac ? std::optional<std::string>(net::format_mac(*nic.mac)) : std::nullopt});
    }
    resources.m_machine.vcpu_count = config.vcpus;
    resources.m_machine.mem_size_mib = config.memory_bytes / MiB;
    resources.m_machine.huge_pages = huge_pages_name(config.page_backing);
    resources.m_entropy = config.rng;
    return resources;
}

void VmResources::update_drive_path(const std::string& drive_id, const std::string& path) {
    for (auto& drive : m_drives) {
        if (drive.drive_id == drive_id) drive.path_on_host = path;
    }
}

json VmResources::to_json() const {
    json boot = {{"kernel_image_path", ""}, {"initrd_path", nullptr}, {"boot_args", nullptr}};
    if (m_boot_source) {
        boot = {{"kernel_image_path", m_boot_source->kernel_image_path},
                {"initrd_path", optional_to_json(m_boot_source->initrd_path)},
                {"boot_args", optional_to_json(m_boot_source->boot_args)}};
    }
    json drives = json::array();
    for (const auto& d : m_drives) {
        drives.push_back({{"drive_id", d.drive_id},
                          {"partuuid", optional_to_json(d.partuuid)},
                          {"is_root_device", d.is_root_device},
                          {"cache_type", d.cache_type == CacheType::Writeback ? "Writeback" : "Unsafe"},
                          {"is_read_only", d.is_read_only},
                          {"path_on_host", d.path_on_host},
                          {"rate_limiter", nullptr},
                          {"io_engine", d.io_engine == IoEngine::Async ? "Async" : "Sync"},
                          {"socket", nullptr}});
    }
    json nics = json::array();
    for (const auto& n : m_nics) {
        nics.push_back({{"iface_id", n.iface_id},
                        {"host_dev_name", n.host_dev_name},
                        {"guest_mac", optional_to_json(n.guest_mac)},
                        {"rx_rate_limiter", nullptr},
                        {"tx_rate_limiter", nullptr}});
    }
    // Firecracker reports logger and metrics as null here whatever was set.
    return {{"balloon", nullptr},
            {"drives", drives},
            {"boot-source", boot},
            {"cpu-config", nullptr},
            {"logger", nullptr},
            {"machine-config", api::to_json(m_machine)},
            {"metrics", nullptr},
            {"mmds-config", nullptr},
            {"network-interfaces", nics},
            {"vsock", nullptr},
            {"entropy", m_entropy ? json{{"rate_limiter", nullptr}} : json(nullptr)}};
}

VmConfig VmResources::to_vm_config() const {
    if (!m_boot_source) {
        throw ResourceError("Start microvm error: Cannot start microvm without kernel configuration.");
    }
    VmConfig config;
    config.kernel_path = m_boot_source->kernel_image_path;
    config.initrd_path = m_boot_source->initrd_path.value_or("");
    config.cmdline = m_boot_source->boot_args.value_or(VmConfig::kDefaultCmdline);
    config.vcpus = m_machine.vcpu_count;
    config.memory_bytes = m_machine.mem_size_mib * MiB;
    config.page_backing = page_backing_of(m_machine.huge_pages);
    for (const auto& d : m_drives) {
        block::DiskOptions disk;
        disk.path = d.path_on_host;
        disk.access = d.is_read_only ? block::DiskAccess::ReadOnly : block::DiskAccess::ReadWrite;
        disk.id = d.drive_id;
        disk.io = d.io_engine == IoEngine::Async ? block::DiskIoEngine::Uring : block::DiskIoEngine::Sync;
        config.disks.push_back(std::move(disk));
        if (d.is_root_device) {
            config.cmdline += d.partuuid ? " root=PARTUUID=" + *d.partuuid : std::string(" root=/dev/vda");
            config.cmdline += d.is_read_only ? " ro" : " rw";
        }
    }
    for (const auto& n : m_nics) {
        net::NetOptions nic;
        nic.tap_name = n.host_dev_name;
        if (n.guest_mac) nic.mac = net::parse_mac(*n.guest_mac);
        nic.id = n.iface_id;
        config.nets.push_back(std::move(nic));
    }
    config.rng = m_entropy;
    return config;
}

}  // namespace keel::api
