// keel bench compare's pure parts: the command line of each system, the OCI
// bundle (config and initrd unpacking), and the report (summary, text, JSON).

#include "bench/compare_report.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/compare_setup.h"
#include "bench/oci_bundle.h"
#include "common/error.h"
#include "argument_checks.h"

using namespace keel;
using namespace keel::bench;

namespace fs = std::filesystem;

namespace {

CompareSetup setup_for_tests() {
    CompareSetup setup;
    setup.kernel = "/k/vmlinuz";
    setup.initrd = "/k/initrd.img";
    setup.vcpus = 2;
    setup.memory_bytes = uint64_t{256} << 20;
    setup.runs = 3;
    setup.systems = {kKeel, kQemuMicrovm, kCrun};
    setup.keel_binary = "/opt/keel/bin/keel";
    return setup;
}

using keel::bench::test::contains_sequence;

CompareSample sample(const std::string& system, unsigned run, double marker_ms, uint64_t rss,
                     std::optional<uint64_t> exits) {
    CompareSample s;
    s.system = system;
    s.run = run;
    s.marker_ms = marker_ms;
    s.exit_ms = marker_ms + 100;
    s.shutdown_ms = 50;
    s.overhead_rss_kib = rss;
    s.overhead_pss_kib = rss / 2;
    s.guest_ram_rss_kib = is_vm_system(system) ? 100000 : 0;
    s.processes = system == kCrun ? 2 : 1;
    s.exits_at_marker = exits;
    return s;
}

// Writes a newc cpio archive, gzip'd, of `entries` (path, type, content).
struct Entry {
    std::string path;
    mode_t type;
    std::string content;  // file data, or a symbolic link's target
};
void write_cpio(const std::string& path, const std::vector<Entry>& entries) {
    archive* a = archive_write_new();
    archive_write_set_format_cpio_newc(a);
    archive_write_add_filter_gzip(a);
    REQUIRE(archive_write_open_filename(a, path.c_str()) == ARCHIVE_OK);
    for (const auto& e : entries) {
        archive_entry* entry = archive_entry_new();
        archive_entry_set_pathname(entry, e.path.c_str());
        archive_entry_set_filetype(entry, static_cast<unsigned>(e.type));
        archive_entry_set_perm(entry, e.type == AE_IFDIR ? 0755 : 0644);
        archive_entry_set_size(entry, e.type == AE_IFREG ? static_cast<la_int64_t>(e.content.size()) : 0);
        if (e.type == AE_IFLNK) archive_entry_set_symlink(entry, e.content.c_str());
        if (e.type == AE_IFCHR) archive_entry_set_rdev(entry, makedev(5, 1));
        const int status = archive_write_header(a, entry);
        INFO((archive_error_string(a) != nullptr ? archive_error_string(a) : ""));
        REQUIRE(status == ARCHIVE_OK);
        if (e.type == AE_IFREG) archive_write_data(a, e.content.data(), e.content.size());
        archive_entry_free(entry);
    }
    archive_write_close(a);
    archive_write_free(a);
}

fs::path fresh_dir(const std::string& name) {
    const fs::path dir = fs::temp_directory_path() / (name + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

}  // namespace

TEST_CASE("each system gets the same kernel, initrd, vCPUs and memory", "[bench][compare]") {
    const CompareSetup setup = setup_for_tests();
    const RunPaths paths{"/w/keel-1.json", "/w/bundle", "keel-bench-1-crun-1"};
    const std::string cmdline = "console=ttyS0 reboot=k panic=-1 quiet rdinit=/bench/payload.sh";
    CHECK(default_vm_cmdline(setup.payload) == cmdline);

    const auto keel = system_command(kKeel, setup, paths);
    CHECK(keel.front() == "/opt/keel/bin/keel");
    CHECK(keel[1] == "run");
    CHECK(contains_sequence(keel, {"--kernel", "/k/vmlinuz"}));
    CHECK(contains_sequence(keel, {"--initrd", "/k/initrd.img"}));
    CHECK(contains_sequence(keel, {"--cpus", "2"}));
    CHECK(contains_sequence(keel, {"--memory", "256M"}));
    CHECK(contains_sequence(keel, {"--cmdline", cmdline}));
    CHECK(contains_sequence(keel, {"--stats-json", "/w/keel-1.json"}));

    const auto qemu = system_command(kQemuMicrovm, setup, paths);
    CHECK(qemu.front() == "qemu-system-x86_64");
    CHECK(contains_sequence(qemu, {"-M", "microvm,acpi=on,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=on"}));
    CHECK(contains_sequence(qemu, {"-enable-kvm", "-cpu", "host", "-smp", "2", "-m", "256M"}));
    CHECK(contains_sequence(qemu, {"-kernel", "/k/vmlinuz", "-initrd", "/k/initrd.img", "-append", cmdline}));
    CHECK(contains_sequence(qemu, {"-serial", "stdio"}));
    CHECK(contains_sequence(qemu, {"-no-reboot"}));

    CHECK(system_command(kCrun, setup, paths) ==
          std::vector<std::string>{"crun", "run", "--bundle", "/w/bundle", "keel-bench-1-crun-1"});
    CHECK(system_command(kRunc, setup, paths).front() == "runc");

    CompareSetup custom = setup;
    custom.cmdline = "console=ttyS0 rdinit=/x";
    CHECK(contains_sequence(system_command(kKeel, custom, paths), {"--cmdline", "console=ttyS0 rdinit=/x"}));
    CHECK(contains_sequence(system_command(kQemuMicrovm, custom, paths), {"-append", "console=ttyS0 rdinit=/x"}));
}

TEST_CASE("the payload's window: VMs from the first KVM_RUN, containers from the payload's execve",
          "[bench][compare]") {
    const CompareSetup setup = setup_for_tests();
    for (const char* vm : {kKeel, kQemuMicrovm}) {
        const auto window = payload_window(vm, setup);
        CHECK(window.kind == StraceWindow::Kind::FromFirstMatch);
        CHECK(window.syscall == "ioctl");
        CHECK(window.argument_text == "KVM_RUN");
    }
    const auto window = payload_window(kRunc, setup);
    CHECK(window.kind == StraceWindow::Kind::MatchingProcessTree);
    CHECK(window.syscall == "execve");
    CHECK(window.argument_text == "\"/bench/payload.sh\"");
    CHECK(is_known_system("crun"));
    CHECK_FALSE(is_known_system("docker"));
    CHECK_FALSE(is_vm_system("runc"));
}

TEST_CASE("the container runs the payload with crun's defaults and a read-only root", "[bench][oci]") {
    const auto config = oci_config("/bench/payload.sh");
    CHECK(config["ociVersion"] == "1.0.2");
    CHECK(config["process"]["args"] == nlohmann::json::array({"/bench/payload.sh"}));
    CHECK(config["process"]["terminal"] == false);
    CHECK(config["process"]["noNewPrivileges"] == true);
    const auto env = config["process"]["env"];
    CHECK(std::find(env.begin(), env.end(), "KEEL_BENCH_CONTAINER=1") != env.end());
    CHECK(config["root"]["path"] == "rootfs");
    CHECK(config["root"]["readonly"] == true);
    std::vector<std::string> namespaces;
    for (const auto& ns : config["linux"]["namespaces"]) namespaces.push_back(ns["type"]);
    CHECK(namespaces == std::vector<std::string>{"pid", "network", "ipc", "uts", "mount", "cgroup"});
    std::vector<std::string> mounts;
    for (const auto& m : config["mounts"]) mounts.push_back(m["destination"]);
    CHECK(mounts.front() == "/proc");
    CHECK(std::find(mounts.begin(), mounts.end(), "/dev") != mounts.end());
    CHECK(config["process"]["capabilities"]["bounding"].size() == 3);
}

TEST_CASE("an initrd unpacks into the bundle without its device nodes", "[bench][oci]") {
    const fs::path dir = fresh_dir("keel-unpack-test");
    const std::string initrd = (dir / "initrd.img").string();
    write_cpio(initrd, {{"bin", AE_IFDIR, ""},
                        {"bin/busybox", AE_IFREG, "#!fake busybox\n"},
                        {"bin/sh", AE_IFLNK, "busybox"},
                        {"bench/payload.sh", AE_IFREG, "echo hi\n"},
                        {"dev", AE_IFDIR, ""},
                        {"dev/console", AE_IFCHR, ""}});
    const fs::path rootfs = dir / "rootfs";
    fs::create_directories(rootfs);
    unpack_initrd(initrd, rootfs.string());
    std::ifstream payload(rootfs / "bench" / "payload.sh");
    std::string line;
    std::getline(payload, line);
    CHECK(line == "echo hi");
    CHECK(fs::is_symlink(rootfs / "bin" / "sh"));
    CHECK(fs::read_symlink(rootfs / "bin" / "sh") == "busybox");
    CHECK(fs::is_directory(rootfs / "dev"));
    CHECK_FALSE(fs::exists(fs::symlink_status(rootfs / "dev" / "console")));
    fs::remove_all(dir);
}

TEST_CASE("an initrd that escapes the bundle, or is not an archive, is refused", "[bench][oci]") {
    const fs::path dir = fresh_dir("keel-unpack-bad-test");
    const fs::path rootfs = dir / "rootfs";
    fs::create_directories(rootfs);

    const std::string escaping = (dir / "escape.img").string();
    write_cpio(escaping, {{"../escaped", AE_IFREG, "x"}});
    CHECK_THROWS_AS(unpack_initrd(escaping, rootfs.string()), Error);
    CHECK_FALSE(fs::exists(dir / "escaped"));

    // A symbolic link pointing out, then a file written through it.
    const std::string through_link = (dir / "link.img").string();
    write_cpio(through_link, {{"out", AE_IFLNK, dir.string()}, {"out/planted", AE_IFREG, "x"}});
    CHECK_THROWS_AS(unpack_initrd(through_link, rootfs.string()), Error);
    CHECK_FALSE(fs::exists(dir / "planted"));

    const std::string text = (dir / "text.img").string();
    std::ofstream(text) << "this is not a cpio archive\n";
    CHECK_THROWS_WITH(unpack_initrd(text, rootfs.string()), Catch::Contains(text));
    CHECK_THROWS_WITH(unpack_initrd((dir / "absent").string(), rootfs.string()),
                      Catch::Contains("cannot read the initrd"));
    fs::remove_all(dir);
}

TEST_CASE("the compare report: medians per system, ratios to QEMU, what each figure means", "[bench][compare]") {
    CompareSetup setup = setup_for_tests();
    setup.emulated = true;
    setup.host = "emulated (QEMU TCG)";
    std::vector<CompareSample> samples;
    for (unsigned run = 1; run <= 3; ++run) {
        samples.push_back(sample(kKeel, run, 100.0 * run, 4000 + run, 3000 + run));
        samples.push_back(sample(kQemuMicrovm, run, 200.0 * run, 40000, 7000));
        samples.push_back(sample(kCrun, run, 10.0 * run, 5000, std::nullopt));
    }
    samples[0].exits_to_vmm = 500;
    samples[0].exits_at_stop = 3100;
    StraceSummary keel_calls;
    keel_calls.all_calls = {{"ioctl", 10}, {"openat", 3}, {"epoll_wait", 5}};
    keel_calls.window_calls = {{"ioctl", 8}, {"epoll_wait", 5}};
    keel_calls.window_found = true;
    const std::vector<CompareSyscalls> syscalls{{kKeel, keel_calls}};

    const auto summary = summarize_compare(setup, samples, syscalls);
    REQUIRE(summary.size() == 3);
    CHECK(summary[0].system == "keel");
    CHECK(summary[0].runs == 3);
    CHECK(summary[0].marker_ms.median == Approx(200.0));
    CHECK(summary[0].marker_ms.min == Approx(100.0));
    CHECK(summary[0].overhead_rss_kib.median == Approx(4002));
    CHECK(summary[0].exits_at_marker.median == Approx(3002));
    CHECK(summary[0].exits_to_vmm.runs == 1);
    CHECK(summary[0].traced);
    CHECK(summary[0].syscalls_distinct == 3);
    CHECK(summary[0].syscalls_distinct_payload == 2);
    CHECK(summary[0].syscalls_payload == 13);
    CHECK(summary[2].exits_at_marker.runs == 0);
    CHECK(summary[2].guest_ram_rss_kib.runs == 0);
    CHECK_FALSE(summary[2].traced);

    const std::string text = compare_report_text(setup, summary);
    CHECK_THAT(text, Catch::Contains("3 runs of each system, interleaved"));
    CHECK_THAT(text, Catch::Contains("THE HOST IS EMULATED"));
    CHECK_THAT(text, Catch::Contains("2 vCPUs, 256 MiB"));
    CHECK_THAT(text, Catch::Contains("keel: launch -> marker 0.50"));
    CHECK_THAT(text, Catch::Contains("VM exits to marker 0.43"));
    CHECK_THAT(text, Catch::Contains("crun: launch -> marker 0.05"));
    CHECK_THAT(text, Catch::Contains("What the figures mean"));

    const auto json = compare_report_json(setup, summary, samples, syscalls);
    CHECK(json["setup"]["systems"] == nlohmann::json::array({"keel", "qemu-microvm", "crun"}));
    CHECK(json["setup"]["memory_mib"] == 256);
    CHECK(json["setup"]["emulated"] == true);
    CHECK(json["setup"]["vm_cmdline"] == default_vm_cmdline("/bench/payload.sh"));
    const auto& keel = json["systems"]["keel"];
    for (const char* key : {"launch_to_marker_ms", "launch_to_exit_ms", "go_ahead_to_exit_ms", "overhead_rss_kib",
                            "overhead_pss_kib", "guest_ram_touched_kib", "vm_exits_to_marker"}) {
        INFO(key);
        CHECK(keel[key]["median"].is_number());
    }
    CHECK(keel["syscalls"]["distinct"] == 3);
    CHECK(json["systems"]["crun"]["vm_exits_to_marker"].is_null());
    CHECK(json["systems"]["crun"]["syscalls"].is_null());
    CHECK(json["runs"].size() == 9);
    CHECK(json["runs"][0]["vm_exits_to_vmm"] == 500);
    CHECK(json["runs"][2]["vm_exits_to_marker"].is_null());
    CHECK(json["syscalls"]["keel"]["payload_running"]["ioctl"] == 8);
}

TEST_CASE("a report without QEMU has no ratios and a bare-metal one no warning", "[bench][compare]") {
    CompareSetup setup = setup_for_tests();
    setup.systems = {kKeel};
    const auto summary = summarize_compare(setup, {sample(kKeel, 1, 50, 3000, 100)}, {});
    const std::string text = compare_report_text(setup, summary);
    CHECK_THAT(text, !Catch::Contains("ratio to qemu-microvm"));
    CHECK_THAT(text, !Catch::Contains("EMULATED"));
    CHECK_THAT(text, Catch::Contains("1 runs of each system"));
}
