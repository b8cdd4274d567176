#include "api/vm_resources.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>

#include "api/json_body.h"
#include "scratch_file.h"

using namespace keel;
using namespace keel::api;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using keel::test::ScratchFile;

namespace {

template <class Parse>
std::string body_error(const std::string& text, Parse parse) {
    try {
        (void)parse(parse_json(text));
    } catch (const BodyError& e) {
        return e.what();
    }
    FAIL("accepted: " << text);
    return {};
}

template <class Apply>
std::string resource_error(Apply apply) {
    try {
        apply();
    } catch (const ResourceError& e) {
        return e.what();
    }
    FAIL("accepted");
    return {};
}

}  // namespace

TEST_CASE("boot-source: Firecracker's fields, the kernel must open", "[api][resources]") {
    const ScratchFile kernel("vmlinux");
    const auto source = parse_boot_source(
        parse_json(R"({"kernel_image_path": ")" + kernel.path + R"(", "boot_args": "console=ttyS0"})"));
    CHECK(source.kernel_image_path == kernel.path);
    CHECK(source.boot_args == "console=ttyS0");
    CHECK_FALSE(source.initrd_path.has_value());
    CHECK_THAT(body_error(R"({"kernel_image_path": "k", "foo": 1})", parse_boot_source),
               Equals("unknown field `foo`, expected one of `kernel_image_path`, `initrd_path`, `boot_args`"));
    CHECK_THAT(body_error(R"({"boot_args": "x"})", parse_boot_source), Equals("missing field `kernel_image_path`"));

    VmResources resources;
    CHECK_THAT(resource_error([&] { resources.set_boot_source({.kernel_image_path = "/nonexistent/vmlinux"}); }),
               Equals("Boot source error: The kernel file cannot be opened: No such file or directory (os error 2)"));
    CHECK_THAT(resource_error([&] {
                   resources.set_boot_source({.kernel_image_path = kernel.path, .initrd_path = "/nonexistent/rd"});
               }),
               Contains("The initrd file cannot be opened"));
    CHECK_THAT(resource_error([&] { (void)resources.to_vm_config(); }),
               Equals("Start microvm error: Cannot start microvm without kernel configuration."));
}

TEST_CASE("drives: one root drive, first in line, replace by id, what keel lacks is refused", "[api][resources]") {
    const ScratchFile kernel("k"), root("root.ext4"), data("data.img");
    CHECK_THAT(body_error(R"({"drive_id": "d", "path_on_host": "p"})", parse_drive),
               Equals("missing field `is_root_device`"));
    CHECK_THAT(body_error(R"({"drive_id": "d", "is_root_device": false})", parse_drive),
               Equals("missing field `path_on_host`"));
    CHECK_THAT(body_error(R"({"drive_id": "d", "is_root_device": "yes", "path_on_host": "p"})", parse_drive),
               Equals("invalid type: string \"yes\", expected a boolean"));
    CHECK_THAT(body_error(R"({"drive_id": "d", "is_root_device": false, "path_on_host": "p", "io_engine": "Fast"})",
                          parse_drive),
               Equals("unknown variant `Fast`, expected `Sync` or `Async`"));
    CHECK_THAT(body_error(R"({"drive_id": "d", "is_root_device": false, "path_on_host": "p",
                              "rate_limiter": {"bandwidth": {"size": 1, "refill_time": 100}}})",
                          parse_drive),
               Contains("`rate_limiter` is not supported"));
    CHECK_THAT(body_error(R"({"drive_id": "d", "is_root_device": false, "socket": "/s"})", parse_drive),
               Contains("vhost-user"));
    CHECK_THAT(body_error(R"({"drive_id": "a b", "is_root_device": false, "path_on_host": "p"})", parse_drive),
               Contains("`drive_id`"));
    // A null rate limiter is no rate limiter.
    CHECK_NOTHROW(parse_drive(
        parse_json(R"({"drive_id": "d", "is_root_device": false, "path_on_host": "p", "rate_limiter": null})")));

    VmResources resources;
    resources.set_boot_source({.kernel_image_path = kernel.path, .boot_args = "console=ttyS0"});
    resources.put_drive(parse_drive(parse_json(R"({"drive_id": "data", "is_root_device": false, "path_on_host": ")" +
                                               data.path + R"(", "io_engine": "Async"})")));
    resources.put_drive(parse_drive(parse_json(R"({"drive_id": "rootfs", "is_root_device": true, "path_on_host": ")" +
                                               root.path + R"(", "is_read_only": true})")));
    CHECK_THAT(resource_error([&] {
                   resources.put_drive({.drive_id = "other", .is_root_device = true, .path_on_host = data.path});
               }),
               Equals("Drive config error: A root block device already exists!"));
    CHECK_THAT(resource_error([&] { resources.put_drive({.drive_id = "x", .path_on_host = "/nonexistent/x"}); }),
               Contains("Drive config error: Unable to open the drive file '/nonexistent/x'"));

    auto config = resources.to_vm_config();
    REQUIRE(config.disks.size() == 2);
    CHECK(config.disks[0].id == "rootfs");  // the root drive is vda
    CHECK(config.disks[0].read_only());
    CHECK(config.disks[0].io == block::DiskIoEngine::Sync);
    CHECK(config.disks[1].id == "data");
    CHECK(config.disks[1].io == block::DiskIoEngine::Uring);
    CHECK(config.cmdline == "console=ttyS0 root=/dev/vda ro");

    // PUT with the same id replaces: now writable, by PARTUUID.
    resources.put_drive(
        {.drive_id = "rootfs", .is_root_device = true, .partuuid = "1234-01", .path_on_host = root.path});
    config = resources.to_vm_config();
    REQUIRE(config.disks.size() == 2);
    CHECK(config.cmdline == "console=ttyS0 root=PARTUUID=1234-01 rw");
    const auto json = resources.to_json();
    REQUIRE(json["drives"].size() == 2);
    CHECK(json["drives"][0]["drive_id"] == "rootfs");
    CHECK(json["drives"][0]["partuuid"] == "1234-01");
    CHECK(json["drives"][1]["io_engine"] == "Async");
    CHECK(json["drives"][1]["rate_limiter"].is_null());
}

TEST_CASE("network interfaces: MACs unique and unicast, TAP names valid, replace by id", "[api][resources]") {
    CHECK_THAT(body_error(R"({"iface_id": "n", "guest_mac": "06:00:AC:10:00:02"})", parse_network_interface),
               Equals("missing field `host_dev_name`"));
    CHECK_THAT(body_error(R"({"iface_id": "n", "host_dev_name": "tap0", "guest_mac": "zz"})", parse_network_interface),
               Contains("`guest_mac`"));
    CHECK_THAT(body_error(R"({"iface_id": "n", "host_dev_name": "tap0", "guest_mac": "01:00:00:00:00:01"})",
                          parse_network_interface),
               Contains("unicast"));
    CHECK_THAT(body_error(R"({"iface_id": "n", "host_dev_name": "a-very-long-tap-name"})", parse_network_interface),
               Contains("`host_dev_name`"));
    CHECK_THAT(
        body_error(R"({"iface_id": "n", "host_dev_name": "tap0", "rx_rate_limiter": {}})", parse_network_interface),
        Contains("`rx_rate_limiter` is not supported"));

    VmResources resources;
    resources.put_network_interface({.iface_id = "net1", .host_dev_name = "tap0", .guest_mac = "06:00:AC:10:00:02"});
    CHECK_THAT(resource_error([&] {
                   resources.put_network_interface(
                       {.iface_id = "net2", .host_dev_name = "tap1", .guest_mac = "06:00:ac:10:00:02"});
               }),
               Equals("Network config error: The MAC address is already in use: 06:00:ac:10:00:02"));
    CHECK_THAT(resource_error([&] { resources.put_network_interface({.iface_id = "net2", .host_dev_name = "tap0"}); }),
               Contains("tap0 is already used by interface net1"));
    resources.put_network_interface({.iface_id = "net1", .host_dev_name = "tap5"});  // replaces
    const auto json = resources.to_json();
    REQUIRE(json["network-interfaces"].size() == 1);
    CHECK(json["network-interfaces"][0]["host_dev_name"] == "tap5");
    CHECK(json["network-interfaces"][0]["guest_mac"].is_null());
}

TEST_CASE("machine-config: PUT resets, PATCH changes what it names, bounds are checked", "[api][resources]") {
    CHECK_THAT(body_error(R"({"mem_size_mib": 128})", parse_machine_config), Equals("missing field `vcpu_count`"));
    CHECK_THAT(body_error(R"({"vcpu_count": "2", "mem_size_mib": 128})", parse_machine_config),
               Equals("invalid type: string \"2\", expected u8"));
    CHECK_THAT(body_error(R"({"vcpu_count": 2, "mem_size_mib": 128, "cpu_template": "T2"})", parse_machine_config),
               Contains("`cpu_template` T2 is not supported"));
    const auto put = parse_machine_config(parse_json(R"({"vcpu_count": 2, "mem_size_mib": 1024})"));
    CHECK(put.vcpu_count == 2);
    CHECK(put.mem_size_mib == 1024);
    CHECK(put.huge_pages == "None");
    const auto patched = patch_machine_config(put, parse_json(R"({"mem_size_mib": 512})"));
    CHECK(patched.vcpu_count == 2);
    CHECK(patched.mem_size_mib == 512);
    CHECK_THAT(body_error("{}", [&](const auto& body) { return patch_machine_config(put, body); }),
               Equals("Empty PATCH request."));

    VmResources resources;
    CHECK(
        resources.to_json()["machine-config"] ==
        parse_json(R"({"vcpu_count":1,"mem_size_mib":128,"smt":false,"track_dirty_pages":false,"huge_pages":"None"})"));
    CHECK_THAT(resource_error([&] { resources.set_machine_config({.vcpu_count = 0}); }),
               Contains("The number of vCPUs must be greater than 0"));
    CHECK_THAT(resource_error([&] { resources.set_machine_config({.vcpu_count = 255}); }), Contains("at most 254"));
    CHECK_THAT(resource_error([&] { resources.set_machine_config({.mem_size_mib = 0}); }),
               Contains("The memory size (MiB) must be at least 16"));
    CHECK_THAT(resource_error([&] { resources.set_machine_config({.smt = true}); }), Contains("SMT"));
    CHECK_THAT(resource_error([&] { resources.set_machine_config({.track_dirty_pages = true}); }),
               Contains("dirty-page"));
    CHECK_THAT(resource_error([&] { resources.set_machine_config({.mem_size_mib = 129, .huge_pages = "2M"}); }),
               Contains("must be a multiple of 2"));
    resources.set_machine_config(put);
    const ScratchFile kernel("k2");
    resources.set_boot_source({.kernel_image_path = kernel.path});
    const auto config = resources.to_vm_config();
    CHECK(config.vcpus == 2);
    CHECK(config.memory_bytes == 1024 * MiB);
    CHECK(config.cmdline == VmConfig::kDefaultCmdline);
    CHECK(config.page_backing == GuestPageBacking::Normal);
    // huge_pages picks the backing of guest RAM, and a command-line VM shows its own.
    for (const auto& [name, backing] : {std::pair{"2M", GuestPageBacking::Hugetlb2M},
                                        std::pair{"Transparent", GuestPageBacking::Transparent}}) {
        resources.set_machine_config({.vcpu_count = 1, .mem_size_mib = 128, .huge_pages = name});
        CHECK(resources.to_vm_config().page_backing == backing);
        VmConfig described = resources.to_vm_config();
        CHECK(VmResources::describe(described).to_json()["machine-config"]["huge_pages"] == name);
    }
}

TEST_CASE("logger, metrics and entropy sections", "[api][resources]") {
    const auto logger = parse_logger(parse_json(R"({"log_path": "l.log", "level": "warn", "show_level": true})"));
    CHECK(logger.level == "Warning");
    CHECK(logger.show_level);
    CHECK(parse_logger(parse_json(R"({"level": "DEBUG"})")).level == "Debug");
    CHECK_THAT(body_error(R"({"level": "Loud"})", parse_logger), Contains("unknown variant `Loud`"));
    CHECK_THAT(body_error(R"({"module": "vmm::devices"})", parse_logger), Contains("`module` is not supported"));
    CHECK_THAT(body_error("{}", parse_metrics), Equals("missing field `metrics_path`"));
    VmResources resources;
    resources.set_metrics({.metrics_path = "m"});
    CHECK_THAT(resource_error([&] { resources.set_metrics({.metrics_path = "m"}); }),
               Contains("Reinitialization of metrics not allowed."));
    CHECK_NOTHROW(parse_entropy(parse_json("{}")));
    CHECK_THAT(body_error(R"({"rate_limiter": {"ops": {"size": 1, "refill_time": 1}}})",
                          [](const auto& body) {
                              parse_entropy(body);
                              return 0;
                          }),
               Contains("`rate_limiter` is not supported"));
    CHECK(resources.to_json()["entropy"].is_null());
    resources.set_entropy();
    CHECK(resources.to_json()["entropy"] == parse_json(R"({"rate_limiter": null})"));
    // Firecracker reports these two as null whatever was set.
    CHECK(resources.to_json()["metrics"].is_null());
    CHECK(resources.to_json()["logger"].is_null());
}
