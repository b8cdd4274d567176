// keel bench boot against real boots (needs /dev/kvm; scripts/test runs it
// inside scripts/kvm-sandbox elsewhere): every figure is there and plausible.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "guest_files.h"
#include "process.h"

using namespace keel::test;

namespace {

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

TEST_CASE("keel bench boot measures three boots of the test guest, every phase in order", "[kvm]") {
    const auto guest = stock_guest();
    const auto dir = scratch_dir();
    const std::string json_path = dir + "/boot.json";
    const std::string svg_path = dir + "/boot.svg";
    ProcessOptions options;
    options.timeout = std::chrono::seconds(800);
    const auto r = run_process({keel_binary(), "bench", "boot", "--runs", "3", "--json", json_path, "--svg", svg_path,
                                "--kernel", guest.kernel, "--initrd", guest.initrd, "--memory", "128M", "--cmdline",
                                "console=ttyS0 reboot=k panic=-1 quiet"},
                               options);
    INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("time from launch (ms)") != std::string::npos);
    CHECK(r.err.find("run 3 of 3") != std::string::npos);

    const auto report = nlohmann::json::parse(read_all(json_path));
    CHECK(report.at("runs") == 3);
    CHECK(report.at("setup").at("memory_mib") == 128);
    const auto& times = report.at("times_ms_from_launch");
    const std::vector<std::string> in_order{"process start",  "memory ready",  "kernel loaded", "first KVM_RUN",
                                            "guest mmio 123", "guest stopped", "process exit"};
    double previous = 0;
    for (const auto& name : in_order) {
        INFO(name);
        REQUIRE(times.contains(name));
        const auto& t = times.at(name);
        CHECK(t.at("runs") == 3);
        CHECK(t.at("min").get<double>() > 0);
        CHECK(t.at("min").get<double>() <= t.at("median").get<double>());
        CHECK(t.at("median").get<double>() <= t.at("max").get<double>());
        CHECK(t.at("median").get<double>() >= previous);
        previous = t.at("median").get<double>();
    }
    CHECK(times.contains("KVM ready"));
    const auto& exits = report.at("exits");
    CHECK(exits.at("exits to keel").at("min").get<double>() > 0);
    CHECK(exits.at("exits (all, KVM)").at("min").get<double>() >= exits.at("exits to keel").at("max").get<double>());
    const auto& rss = report.at("memory_kib").at("rss");
    CHECK(rss.at("overhead").at("min").get<double>() > 0);
    CHECK(rss.at("binary").at("min").get<double>() > 0);
    CHECK(rss.at("guest_ram_touched").at("min").get<double>() > 1024);  // a booted kernel touches MiBs
    // Guest RAM is not overhead: were its anonymous mapping misfiled, it would
    // land in "heap" (keel's own heap is KiBs; ASan's shadow adds MiBs, still
    // far below the ~100 MiB a booted guest touches).
    CHECK(rss.at("heap").at("max").get<double>() < rss.at("guest_ram_touched").at("min").get<double>() / 2);
    REQUIRE(report.at("each_run").size() == 3);
    for (const auto& run : report.at("each_run")) {
        CHECK(run.at("stop_reason") == "poweroff");
        double last = 0;
        for (const auto& event : run.at("events_ms")) {
            CHECK(event.at("ms").get<double>() >= last);
            last = event.at("ms").get<double>();
        }
    }
    const auto svg = read_all(svg_path);
    CHECK(svg.rfind("<?xml", 0) == 0);
    CHECK(svg.find("first KVM_RUN") != std::string::npos);
    CHECK(svg.find("</svg>") != std::string::npos);
}
