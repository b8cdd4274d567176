// keel jail's parts that need neither root nor KVM: its command line, the
// rewriting of keel run's arguments, and the cgroup writes (against a plain
// directory standing in for /sys/fs/cgroup).
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>

#include "cli/cli.h"
#include "cli_checks.h"
#include "common/error.h"
#include "jail/cgroup.h"
#include "jail/chroot_dir.h"
#include "jail/jail_options.h"
#include "jail/run_arguments.h"

using namespace keel;
using namespace keel::jail;

namespace {

void check_one_line_usage_error(const CliOutcome& out, const std::string& expected_part) {
    keel::test::check_one_line_usage_error(out, "error: jail: ", expected_part);
}

std::vector<std::string> jail_command(std::vector<std::string> run_args, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"jail", "--id", "vm1", "--uid", "1000", "--gid", "1001"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back("--");
    args.insert(args.end(), run_args.begin(), run_args.end());
    return args;
}

std::string message_of(const std::function<void()>& action) {
    try {
        action();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

// A directory laid out like a cgroup v2 mount: the root's core files and
// keel/, with the interface files each test needs created by the test.
struct FakeCgroupRoot {
    std::string path;
    FakeCgroupRoot() {
        char name[] = "/tmp/keel-jail-cgroup-XXXXXX";
        path = ::mkdtemp(name);
        write("cgroup.controllers", "cpuset cpu io memory pids\n");
        write("cgroup.subtree_control", "");
    }
    ~FakeCgroupRoot() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    void write(const std::string& file, const std::string& text) const {
        std::filesystem::create_directories(std::filesystem::path(path + "/" + file).parent_path());
        std::ofstream(path + "/" + file) << text;
    }
    [[nodiscard]] std::string read(const std::string& file) const {
        std::ifstream in(path + "/" + file);
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    }
};

}  // namespace

TEST_CASE("jail ids are 1-64 characters of letters, digits and '-'", "[jail]") {
    CHECK_NOTHROW(validate_id("vm1"));
    CHECK_NOTHROW(validate_id("a-B-9"));
    CHECK_NOTHROW(validate_id(std::string(64, 'x')));
    for (const std::string& bad : std::vector<std::string>{"", "-vm", "vm/1", "..", "vm_1", "vm 1", std::string(65, 'x')}) {
        INFO(bad);
        CHECK(message_of([&] { validate_id(bad); }).find("--id '" + bad + "'") == 0);
    }
}

TEST_CASE("jail uid and gid are decimal numbers below 2^32-1", "[jail]") {
    CHECK(parse_numeric_id("0", "--uid") == 0);
    CHECK(parse_numeric_id("4294967294", "--uid") == 4294967294U);
    for (const std::string bad : {"", "-1", "4294967295", "1e3", "root", "12a", " 1"}) {
        INFO(bad);
        CHECK(message_of([&] { (void)parse_numeric_id(bad, "--gid"); }) ==
              "--gid '" + bad + "': must be a number from 0 to 4294967294");
    }
}

TEST_CASE("jail cgroup settings are interface files of a controller", "[jail]") {
    const auto memory = parse_cgroup_setting("memory.max=512M");
    CHECK(memory.file == "memory.max");
    CHECK(memory.value == "512M");
    CHECK(memory.controller() == "memory");
    const auto cpu = parse_cgroup_setting("cpu.max=50000 100000");
    CHECK(cpu.value == "50000 100000");
    CHECK(cpu.controller() == "cpu");
    CHECK(parse_cgroup_setting("pids.max=2").controller() == "pids");
    for (const std::string bad : {"memory.max", "memory.max=", "max=1", ".max=1", "memory.=1", "../x.max=1",
                                  "memory/../x.max=1", "Memory.max=1", "cgroup.procs=1", "memory..max=1"}) {
        INFO(bad);
        const auto message = message_of([&] { (void)parse_cgroup_setting(bad); });
        CHECK(message.rfind("--cgroup '" + bad + "': ", 0) == 0);
    }
}

TEST_CASE("jail resource limits take Firecracker's names", "[jail]") {
    ResourceLimits limits;
    CHECK(limits.open_files == 2048);
    CHECK_FALSE(limits.file_size);
    apply_resource_limit("no-file=4096", limits);
    apply_resource_limit("fsize=1048576", limits);
    CHECK(limits.open_files == 4096);
    CHECK(limits.file_size == 1048576U);
    CHECK(message_of([&] { apply_resource_limit("nofile=10", limits); }).find("unknown limit 'nofile'") !=
          std::string::npos);
    CHECK(message_of([&] { apply_resource_limit("fsize=big", limits); }).find("must be fsize=N or no-file=N") !=
          std::string::npos);
    CHECK(message_of([&] { apply_resource_limit("no-file=3", limits); }).find("at least 16") != std::string::npos);
}

TEST_CASE("jail directory is chroot-base/keel/id/root", "[jail]") {
    JailOptions options;
    options.id = "vm7";
    CHECK(jail_root(options) == "/srv/jail/keel/vm7/root");
    options.chroot_base = "/var/lib/jails/";
    CHECK(jail_dir(options) == "/var/lib/jails/keel/vm7");
    options.chroot_base = "relative";
    CHECK(message_of([&] { validate_options(options); }).find("--chroot-base 'relative': must be an absolute path") ==
          0);
    options.chroot_base = "/srv";
    options.cgroups = {parse_cgroup_setting("pids.max=5"), parse_cgroup_setting("pids.max=6")};
    CHECK(message_of([&] { validate_options(options); }) == "--cgroup: 'pids.max' given twice");
}

TEST_CASE("jail rewrites the files keel run names to their paths in the jail", "[jail]") {
    const std::vector<std::string> args{"--kernel",  "/boot/vmlinuz", "--initrd=/boot/initrd.img", "--cpus", "2",
                                        "--disk",    "id=root,path=/images/root.img,serial=abc",
                                        "--disk=path=/images/data.img,readonly=on", "--cmdline", "--kernel x"};
    NamedFiles named{"/boot/vmlinuz", "/boot/initrd.img", {{"/images/root.img", false}, {"/images/data.img", true}}};
    const auto plan = plan_run_arguments(args, named);
    const std::vector<std::string> expected{"--kernel", "/kernel", "--initrd=/initrd", "--cpus", "2",
                                            "--disk", "id=root,path=/disk0,serial=abc",
                                            "--disk=path=/disk1,readonly=on", "--cmdline", "--kernel x"};
    CHECK(plan.args == expected);
    REQUIRE(plan.files.size() == 4);
    CHECK(plan.files[0].host_path == "/boot/vmlinuz");
    CHECK(plan.files[0].jail_path == "/kernel");
    CHECK(plan.files[0].read_only);
    CHECK(plan.files[1].jail_path == "/initrd");
    CHECK(plan.files[2].host_path == "/images/root.img");
    CHECK(plan.files[2].jail_path == "/disk0");
    CHECK_FALSE(plan.files[2].read_only);
    CHECK(plan.files[3].jail_path == "/disk1");
    CHECK(plan.files[3].read_only);
}

TEST_CASE("jail argument rewriting refuses what keel run's parser did not read", "[jail]") {
    NamedFiles named{"/k", "", {{"/a.img", false}}};
    CHECK_THROWS_AS(plan_run_arguments({"--kernel", "/k", "--disk", "path=/b.img"}, named), Error);
    CHECK_THROWS_AS(plan_run_arguments({"--kernel", "/k"}, named), Error);
}

TEST_CASE("keel jail parses its options and keel run's through keel's own parser", "[jail]") {
    const auto out = parse_command_line(jail_command(
        {"--kernel", "bz", "--initrd", "rd", "--disk", "path=root.img", "--net", "tap=tap0", "--cpus", "2"},
        {"--cgroup", "memory.max=512M", "--cgroup", "pids.max=64", "--netns", "/var/run/netns/t", "--new-pid-ns",
         "--resource-limit", "fsize=1000", "--chroot-base", "/tmp/j"}));
    INFO(out.message);
    REQUIRE(out.command == CliCommand::Jail);
    const auto& options = out.jail.options;
    CHECK(options.id == "vm1");
    CHECK(options.uid == 1000);
    CHECK(options.gid == 1001);
    CHECK(options.chroot_base == "/tmp/j");
    CHECK(options.netns == "/var/run/netns/t");
    CHECK(options.new_pid_ns);
    CHECK_FALSE(options.daemonize);
    CHECK(options.limits.file_size == 1000U);
    REQUIRE(options.cgroups.size() == 2);
    CHECK(options.cgroups[1].file == "pids.max");
    CHECK(out.jail.uses_tap);
    const std::vector<std::string> expected{"--kernel", "/kernel", "--initrd", "/initrd", "--disk", "path=/disk0",
                                            "--net",    "tap=tap0", "--cpus",  "2"};
    CHECK(out.jail.run.args == expected);
    REQUIRE(out.jail.run.files.size() == 3);
    CHECK(out.jail.run.files[2].host_path == "root.img");
}

TEST_CASE("keel jail command line errors are one line naming the problem", "[jail]") {
    check_one_line_usage_error(parse_command_line({"jail", "--id", "vm1", "--uid", "1", "--gid", "1"}),
                               "'--' and keel run's arguments are missing");
    check_one_line_usage_error(parse_command_line({"jail", "--uid", "1", "--gid", "1", "--", "--kernel", "k"}),
                               "--id is required");
    check_one_line_usage_error(
        parse_command_line({"jail", "--id", "vm1", "--uid", "x", "--gid", "1", "--", "--kernel", "k"}),
        "--uid 'x': must be a number");
    check_one_line_usage_error(
        parse_command_line({"jail", "--id", "a/b", "--uid", "1", "--gid", "1", "--", "--kernel", "k"}), "--id 'a/b'");
    check_one_line_usage_error(parse_command_line(jail_command({"--kernel", "k"}, {"--cgroup", "memory"})),
                               "--cgroup 'memory'");
    check_one_line_usage_error(parse_command_line(jail_command({"--config-file", "vm.json"})),
                               "--config-file cannot be jailed");
    check_one_line_usage_error(parse_command_line(jail_command({"--kernel", "k", "--net", "fd=3"})),
                               "--net fd= cannot be jailed");
    check_one_line_usage_error(parse_command_line(jail_command({"--kernel", "k", "--memory", "lots"})),
                               "keel run arguments: ");
    check_one_line_usage_error(parse_command_line(jail_command({"--cpus", "2"})), "keel run arguments: ");
}

TEST_CASE("keel jail --help describes the jail's options", "[jail]") {
    const auto out = parse_command_line({"jail", "--help"});
    CHECK(out.command == CliCommand::Exit);
    CHECK(out.exit_code == 0);
    CHECK(out.message.find("--new-pid-ns") != std::string::npos);
    CHECK(out.message.find("--cgroup") != std::string::npos);
}

TEST_CASE("jail cgroup: controllers are delegated, limits written, the pid joined", "[jail]") {
    FakeCgroupRoot root;
    root.write("keel/cgroup.subtree_control", "");
    const VmCgroup cgroup(root.path, "vm1");
    CHECK(cgroup.path() == root.path + "/keel/vm1");
    const std::vector<CgroupSetting> settings{parse_cgroup_setting("memory.max=536870912"),
                                              parse_cgroup_setting("pids.max=64")};
    cgroup.prepare_parent(settings);
    // One controller per write, as cgroupfs takes them; a plain file keeps the last.
    CHECK(root.read("cgroup.subtree_control") == "+pids");
    CHECK(root.read("keel/cgroup.subtree_control") == "+pids");
    cgroup.create();
    root.write("keel/vm1/memory.max", "max\n");
    root.write("keel/vm1/pids.max", "max\n");
    root.write("keel/vm1/cgroup.procs", "");
    cgroup.apply(settings);
    CHECK(root.read("keel/vm1/memory.max") == "536870912");
    CHECK(root.read("keel/vm1/pids.max") == "64");
    cgroup.join(4242);
    CHECK(root.read("keel/vm1/cgroup.procs") == "4242");
}

TEST_CASE("jail cgroup failures are one line naming the file", "[jail]") {
    FakeCgroupRoot root;
    root.write("keel/cgroup.subtree_control", "memory pids\n");
    const VmCgroup cgroup(root.path, "vm1");
    SECTION("an unknown interface file") {
        cgroup.create();
        const auto message = message_of([&] { cgroup.apply({parse_cgroup_setting("memory.maxx=1")}); });
        CHECK(message == "cannot write 'memory.maxx' (" + root.path + "/keel/vm1/memory.maxx): No such file or directory");
    }
    SECTION("a file that cannot be written") {
        cgroup.create();
        std::filesystem::create_directory(root.path + "/keel/vm1/pids.max");
        const auto message = message_of([&] { cgroup.apply({parse_cgroup_setting("pids.max=2")}); });
        CHECK(message == "cannot write 'pids.max' (" + root.path + "/keel/vm1/pids.max): Is a directory");
    }
    SECTION("the same id twice") {
        cgroup.create();
        CHECK(message_of([&] { cgroup.create(); }).find("already exists") != std::string::npos);
    }
    SECTION("a controller the hierarchy lacks") {
        root.write("cgroup.controllers", "cpu pids\n");
        CHECK(message_of([&] { cgroup.prepare_parent({parse_cgroup_setting("memory.max=1")}); }) ==
              "controller 'memory' is not available in " + root.path + " (its cgroup.controllers: cpu pids)");
    }
    SECTION("no cgroup v2 hierarchy") {
        std::filesystem::remove(root.path + "/cgroup.controllers");
        CHECK(message_of([&] { cgroup.prepare_parent({}); }).find("no cgroup v2 hierarchy at '" + root.path + "'") ==
              0);
    }
}

TEST_CASE("jail refuses a dynamically linked keel and a second jail of the same id", "[jail]") {
    CHECK(needs_interpreter("/bin/sh"));
    CHECK(message_of([] { (void)jailed_keel("/bin/sh"); }) ==
          "'/bin/sh' is dynamically linked and its libraries are not in the jail; build keel with -DKEEL_STATIC=ON "
          "(scripts/build's default)");
    CHECK(message_of([] { (void)needs_interpreter(KEEL_SOURCE_DIR "/README.md"); }).find("not a 64-bit ELF") !=
          std::string::npos);
    char name[] = "/tmp/keel-jail-dir-XXXXXX";
    const std::string base = ::mkdtemp(name);
    const auto dir = base + "/keel/vm1";
    create_jail_dir(dir, ::getuid(), ::getgid());
    CHECK(std::filesystem::is_directory(dir + "/root"));
    CHECK(message_of([&] { create_jail_dir(dir, ::getuid(), ::getgid()); }) ==
          "'" + dir + "' already exists (a jail with this id runs, or was left behind: remove it)");
    CHECK(message_of([&] { check_host_files({{base + "/missing", "/kernel", true}}); }) ==
          "cannot use '" + base + "/missing' (for /kernel): No such file or directory");
    CHECK(message_of([&] { check_host_files({{base, "/disk0", false}}); }) ==
          "'" + base + "' (for /disk0) is neither a file nor a block device");
    create_mount_points(dir + "/root", {{"/x", "/kernel", true}});
    CHECK(std::filesystem::is_regular_file(dir + "/root/kernel"));
    std::filesystem::remove_all(base);
}
