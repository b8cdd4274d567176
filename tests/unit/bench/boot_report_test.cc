// keel bench boot's report: reading keel's --stats-json, the spread of each
// figure over runs, and the JSON / text / SVG it writes.

#include <catch2/catch.hpp>

#include "bench/boot_sample.h"
#include "bench/boot_summary.h"
#include "bench/boot_svg.h"
#include "bench/host_kind.h"
#include "common/error.h"

using namespace keel;
using namespace keel::bench;

namespace {

constexpr uint64_t kLaunch = 5'000'000'000;  // ns, CLOCK_MONOTONIC when the bench started keel

// keel's --stats-json as a run writes it (trimmed to what the bench reads,
// plus a few fields it ignores), keel having started `start_after_ms` after
// the launch; phases and marks in ms since keel started.
nlohmann::json stats(double start_after_ms, double scale = 1.0) {
    auto j = nlohmann::json::parse(R"({
      "stop_reason": "power off", "vcpus": 1, "guest_memory_mib": 128,
      "phases_ms": {"memory ready": 1.5, "kernel loaded": 3.0, "KVM ready": 2.0, "vCPUs ready": 3.5,
                    "first KVM_RUN": 4.0, "guest stopped": 90.0},
      "guest_marks": [{"source": "mmio", "code": 123, "ms": 60.0}, {"source": "port80", "code": 97, "ms": 80.0},
                      {"source": "port80", "code": 97, "ms": 85.0}],
      "exits": {"total": 2100, "by_reason": {"io": 2000, "mmio": 90, "hlt": 10}, "pio": [], "mmio": [],
                "other_addresses": 0, "kvm": {"exits": 40000, "halt_exits": 300}},
      "memory_kib": {"overhead": {"rss": 1900, "pss": 1500}, "binary": {"rss": 600, "pss": 600},
                     "libraries": {"rss": 900, "pss": 500}, "heap": {"rss": 300, "pss": 300},
                     "stacks": {"rss": 40, "pss": 40}, "kvm": {"rss": 52, "pss": 52}, "other": {"rss": 8, "pss": 8},
                     "guest_ram_touched": {"rss": 30000, "pss": 30000}},
      "devices": []
    })");
    j["process_start_monotonic_ns"] = kLaunch + static_cast<uint64_t>(start_after_ms * 1e6);
    j["phases_ms"]["guest stopped"] = 90.0 * scale;
    return j;
}

double at(const BootSample& sample, const std::string& name) {
    for (const auto& [event, ms] : sample.events) {
        if (event == name) return ms;
    }
    FAIL("no event " << name);
    return 0;
}

}  // namespace

TEST_CASE("a run's statistics become times from the launch, in order", "[bench]") {
    const auto sample = sample_from_stats(stats(2.5), kLaunch, kLaunch + 100'000'000);
    CHECK(sample.events.front() == std::pair<std::string, double>{"process start", 2.5});
    CHECK(at(sample, "KVM ready") == Approx(4.5));
    CHECK(at(sample, "guest mmio 123") == Approx(62.5));
    CHECK(at(sample, "guest port80 0x61") == Approx(82.5));
    CHECK(sample.events.back() == std::pair<std::string, double>{"process exit", 100.0});
    for (size_t i = 1; i < sample.events.size(); ++i) CHECK(sample.events[i - 1].second <= sample.events[i].second);
    CHECK(sample.stop_reason == "power off");
    CHECK(sample.exits_to_keel == 2100);
    CHECK(sample.exits_by_reason.at("io") == 2000);
    CHECK(sample.kvm_exits == 40000u);
    CHECK(sample.rss_kib.at("overhead") == 1900);
    CHECK(sample.pss_kib.at("libraries") == 500);
    CHECK(sample.rss_kib.at("guest_ram_touched") == 30000);
}

TEST_CASE("statistics that are not keel's are refused with what is missing", "[bench]") {
    auto no_start = stats(1);
    no_start.erase("process_start_monotonic_ns");
    CHECK_THROWS_WITH(sample_from_stats(no_start, kLaunch, kLaunch + 1), Catch::Contains("process_start_monotonic_ns"));
    auto bad_phase = stats(1);
    bad_phase["phases_ms"]["KVM ready"] = "soon";
    CHECK_THROWS_WITH(sample_from_stats(bad_phase, kLaunch, kLaunch + 100'000'000), Catch::Contains("KVM ready"));
    auto no_memory = stats(1);
    no_memory.erase("memory_kib");
    CHECK_THROWS_AS(sample_from_stats(no_memory, kLaunch, kLaunch + 100'000'000), Error);
    // Started before the launch: another clock, or another run's file.
    CHECK_THROWS_AS(sample_from_stats(stats(1), kLaunch + 10'000'000, kLaunch + 100'000'000), Error);
    CHECK_THROWS_AS(sample_from_stats(nlohmann::json::array(), kLaunch, kLaunch + 1), Error);
}

TEST_CASE("spread_of gives min, median and max", "[bench]") {
    const auto odd = spread_of({3, 1, 2});
    CHECK((odd.min == 1 && odd.median == 2 && odd.max == 3 && odd.runs == 3));
    const auto even = spread_of({4, 1, 3, 2});
    CHECK((even.min == 1 && even.median == 2.5 && even.max == 4 && even.runs == 4));
    CHECK(spread_of({}).runs == 0);
}

TEST_CASE("a summary orders events by median and says which runs lack one", "[bench]") {
    std::vector<BootSample> samples;
    samples.push_back(sample_from_stats(stats(1.0, 1.0), kLaunch, kLaunch + 95'000'000));
    samples.push_back(sample_from_stats(stats(3.0, 1.2), kLaunch, kLaunch + 120'000'000));
    auto without_marks = stats(2.0, 1.1);
    without_marks["guest_marks"] = nlohmann::json::array();
    samples.push_back(sample_from_stats(without_marks, kLaunch, kLaunch + 110'000'000));
    const auto summary = summarize(samples);
    CHECK(summary.runs == 3);
    REQUIRE(summary.events.front().first == "process start");
    CHECK(summary.events.front().second.median == 2.0);
    CHECK(summary.events.back().first == "process exit");
    CHECK(summary.events.back().second.min == Approx(95.0));
    CHECK(summary.events.back().second.max == Approx(120.0));
    for (size_t i = 1; i < summary.events.size(); ++i) {
        CHECK(summary.events[i - 1].second.median <= summary.events[i].second.median);
    }
    for (const auto& [name, s] : summary.events) {
        // The port80 mark came twice per run: its first time counts.
        if (name == "guest port80 0x61") CHECK((s.runs == 2 && s.median == Approx(82.0)));
        if (name == "KVM ready") CHECK(s.runs == 3);
    }
    REQUIRE(summary.exits.size() >= 2);
    CHECK(summary.exits[0].first == "exits to keel");
    CHECK(summary.exits[1].first == "exits (all, KVM)");
    CHECK(summary.exits[2].first == "to keel: hlt");
    REQUIRE(summary.rss_kib.front().first == "overhead");
    CHECK(summary.rss_kib.front().second.median == 1900);
    CHECK(summary.rss_kib.back().first == "guest_ram_touched");
}

TEST_CASE("the JSON report holds the setup, every figure's spread and each run", "[bench]") {
    const std::vector<BootSample> samples{sample_from_stats(stats(1), kLaunch, kLaunch + 95'000'000),
                                          sample_from_stats(stats(2), kLaunch, kLaunch + 97'000'000)};
    BootBenchSetup setup;
    setup.kernel = "vmlinuz";
    setup.vcpus = 2;
    setup.memory_mib = 128;
    setup.transport = "pci";
    const auto j = boot_report_json(setup, summarize(samples), samples);
    CHECK(j.at("benchmark") == "keel bench boot");
    CHECK(j.at("runs") == 2);
    CHECK(j.at("setup").at("vcpus") == 2);
    CHECK(j.at("setup").at("emulated").is_boolean());
    for (const char* group : {"times_ms_from_launch", "exits"}) {
        REQUIRE(j.at(group).is_object());
        for (const auto& [name, s] : j.at(group).items()) {
            INFO(group << " " << name);
            for (const char* key : {"min", "median", "max", "runs"}) CHECK(s.at(key).is_number());
            CHECK(s.at("min").get<double>() <= s.at("median").get<double>());
            CHECK(s.at("median").get<double>() <= s.at("max").get<double>());
        }
    }
    CHECK(j.at("times_ms_from_launch").contains("first KVM_RUN"));
    CHECK(j.at("memory_kib").at("rss").at("overhead").at("median") == 1900.0);
    CHECK(j.at("memory_kib").at("pss").at("overhead").at("median") == 1500.0);
    REQUIRE(j.at("each_run").size() == 2);
    CHECK(j.at("each_run")[1].at("events_ms").back().at("name") == "process exit");
    CHECK(j.at("each_run")[1].at("kvm_exits") == 40000);
}

TEST_CASE("the text report names every event and warns when the host was emulated", "[bench]") {
    const std::vector<BootSample> samples{sample_from_stats(stats(1), kLaunch, kLaunch + 95'000'000)};
    BootBenchSetup setup;
    setup.kernel = "vmlinuz";
    setup.transport = "mmio";
    const auto summary = summarize(samples);
    const auto plain = boot_report_text(setup, summary);
    CHECK(plain.find("EMULATED") == std::string::npos);
    for (const auto& [name, s] : summary.events) CHECK(plain.find(name) != std::string::npos);
    CHECK(plain.find("overhead (all but guest RAM)") != std::string::npos);
    setup.emulated = true;
    CHECK(boot_report_text(setup, summary).find("EMULATED") != std::string::npos);
}

TEST_CASE("the SVG has a bar per event and escapes what it prints", "[bench]") {
    std::vector<BootSample> samples{sample_from_stats(stats(1), kLaunch, kLaunch + 95'000'000)};
    samples[0].events.emplace_back("<odd & \"name\">", 99.0);
    BootBenchSetup setup;
    setup.kernel = "a<b";
    const auto summary = summarize(samples);
    const auto svg = boot_report_svg(setup, summary);
    CHECK(svg.rfind("<?xml", 0) == 0);
    CHECK(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\"") != std::string::npos);
    CHECK(svg.find("</svg>") != std::string::npos);
    CHECK(svg.find("&lt;odd &amp; &quot;name&quot;&gt;") != std::string::npos);
    CHECK(svg.find("a&lt;b") != std::string::npos);
    CHECK(svg.find("<odd") == std::string::npos);
    for (const auto& [name, s] : summary.events) {
        if (name.find('<') == std::string::npos) CHECK(svg.find(">" + name + "<") != std::string::npos);
    }
    size_t rects = 0;
    for (size_t at = svg.find("<rect"); at != std::string::npos; at = svg.find("<rect", at + 1)) ++rects;
    // Background, one bar per event, the memory kinds (stacked and in the
    // legend) and guest RAM.
    CHECK(rects == 1 + summary.events.size() + 2 * 6 + 1);
}

TEST_CASE("the host is bare metal, nested or emulated as CPUID says", "[bench]") {
    CHECK(classify_host(false, "").description == "bare metal");
    CHECK_FALSE(classify_host(false, "").emulated);
    const auto tcg = classify_host(true, "TCGTCGTCGTCG");
    CHECK(tcg.emulated);
    CHECK(tcg.description == "emulated (QEMU TCG)");
    const auto kvm = classify_host(true, std::string("KVMKVMKVM\0\0\0", 12));
    CHECK_FALSE(kvm.emulated);
    CHECK(kvm.description == "nested (hypervisor KVMKVMKVM)");
    CHECK(classify_host(true, "").description == "nested (hypervisor unknown)");
    CHECK_FALSE(host_kind().description.empty());
}
