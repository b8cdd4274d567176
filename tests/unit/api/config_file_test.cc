#include "api/config_file.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>

#include "common/error.h"
#include "scratch_file.h"

using namespace keel;
using namespace keel::api;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using keel::test::ScratchFile;

namespace {

std::string config_error(const std::string& text) {
    try {
        (void)parse_config_file(text);
    } catch (const Error& e) {
        return e.what();
    }
    FAIL("accepted: " << text);
    return {};
}

}  // namespace

TEST_CASE("a Firecracker config file becomes keel's VmConfig", "[api][config]") {
    const ScratchFile kernel("vmlinux", "k"), rootfs("rootfs.ext4", "r");
    // The shape of Firecracker's tests/framework/vm_config.json, with keel's files.
    const auto resources = parse_config_file(R"({
      "boot-source": {"kernel_image_path": ")" +
                                             kernel.path + R"(", "boot_args": "console=ttyS0 reboot=k panic=1",
                      "initrd_path": null},
      "drives": [{"drive_id": "rootfs", "partuuid": null, "is_root_device": true, "cache_type": "Unsafe",
                  "is_read_only": false, "path_on_host": ")" +
                                             rootfs.path + R"(", "io_engine": "Sync",
                  "rate_limiter": null, "socket": null}],
      "machine-config": {"vcpu_count": 2, "mem_size_mib": 1024, "smt": false, "track_dirty_pages": false,
                         "huge_pages": "None"},
      "cpu-config": null, "balloon": null,
      "network-interfaces": [{"iface_id": "net1", "host_dev_name": "tap0", "guest_mac": "06:00:AC:10:00:02"}],
      "vsock": null, "logger": {"level": "Info", "show_level": true}, "metrics": null, "mmds-config": null,
      "entropy": {}, "some-future-section": {"ignored": true}
    })");
    const auto config = resources.to_vm_config();
    CHECK(config.kernel_path == kernel.path);
    CHECK(config.initrd_path.empty());
    CHECK(config.cmdline == "console=ttyS0 reboot=k panic=1 root=/dev/vda rw");
    CHECK(config.vcpus == 2);
    CHECK(config.memory_bytes == 1024 * MiB);
    REQUIRE(config.disks.size() == 1);
    CHECK(config.disks[0].path == rootfs.path);
    REQUIRE(config.nets.size() == 1);
    CHECK(config.nets[0].tap_name == "tap0");
    CHECK(config.nets[0].id == "net1");
    CHECK(config.rng);
    REQUIRE(resources.logger().has_value());
    CHECK(resources.logger()->level == "Info");
}

TEST_CASE("config file errors name the section and the field", "[api][config]") {
    const ScratchFile kernel("vmlinux2", "k");
    const std::string boot = R"("boot-source": {"kernel_image_path": ")" + kernel.path + R"("})";
    CHECK_THAT(config_error("{"), Contains("config file: invalid JSON: parse error"));
    CHECK_THAT(config_error("[]"), Equals("config file: invalid type: sequence, expected struct VmmConfig"));
    CHECK_THAT(config_error(R"({"drives": []})"), Equals("config file: missing field `boot-source`"));
    CHECK_THAT(config_error("{" + boot + "}"), Equals("config file: missing field `drives`"));
    CHECK_THAT(config_error("{" + boot + R"(, "drives": {}})"),
               Equals("config file: drives: invalid type: map, expected a sequence"));
    CHECK_THAT(config_error("{" + boot + R"(, "drives": [{"drive_id": "a", "path_on_host": "x"}]})"),
               Equals("config file: drives[0]: missing field `is_root_device`"));
    CHECK_THAT(config_error("{" + boot + R"(, "drives": [], "machine-config": {"vcpu_count": 1, "mem_size_mib": 1}})"),
               Contains("config file: machine-config: Machine config error: The memory size (MiB) must be at least"));
    CHECK_THAT(config_error("{" + boot + R"(, "drives": [], "vsock": {"guest_cid": 3, "uds_path": "/v"}})"),
               Equals("config file: `vsock` is not supported by keel"));
    CHECK_THAT(config_error("{" + boot + R"(, "drives": [], "drives": []})"),
               Equals("config file: invalid JSON: duplicate field `drives`"));
    CHECK_THAT(config_error(R"({"boot-source": {"kernel_image_path": "/nonexistent/k"}, "drives": []})"),
               Contains("config file: boot-source: Boot source error: The kernel file cannot be opened"));
    CHECK_THAT(config_error("{" + boot + R"(, "drives": [], "network-interfaces": [{"iface_id": "a"}]})"),
               Equals("config file: network-interfaces[0]: missing field `host_dev_name`"));
    // Without network-interfaces (Firecracker's default is []), it boots.
    CHECK(parse_config_file("{" + boot + R"(, "drives": []})").to_vm_config().nets.empty());
}

TEST_CASE("load_config_file names the file it could not use", "[api][config]") {
    try {
        (void)load_config_file("/nonexistent/vm.json");
        FAIL("loaded");
    } catch (const Error& e) {
        CHECK_THAT(std::string(e.what()),
                   Equals("cannot open config file '/nonexistent/vm.json': No such file or directory"));
    }
    const ScratchFile bad("bad.json", R"({"boot-source": 1, "drives": []})");
    try {
        (void)load_config_file(bad.path);
        FAIL("loaded");
    } catch (const Error& e) {
        CHECK_THAT(std::string(e.what()),
                   Equals("config file '" + bad.path +
                          "': boot-source: invalid type: integer `1`, expected struct BootSource"));
    }
    const ScratchFile huge("huge.json", std::string(kMaxConfigFileBytes + 1, ' '));
    try {
        (void)load_config_file(huge.path);
        FAIL("loaded");
    } catch (const Error& e) {
        CHECK_THAT(std::string(e.what()), Contains("is larger than"));
    }
}
