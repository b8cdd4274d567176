// keel bench density's pure parts: MemAvailable from /proc/meminfo, and the
// report (per-instance memory, launches and boots per second) as text and JSON.

#include "bench/density_report.h"

#include <catch2/catch.hpp>

using namespace keel::bench;

namespace {

DensitySetup setup_for_tests(const std::string& system) {
    DensitySetup setup;
    setup.base.kernel = "/k/vmlinuz";
    setup.base.initrd = "/k/initrd.img";
    setup.base.memory_bytes = uint64_t{128} << 20;
    setup.base.systems = {system};
    setup.count = 4;
    return setup;
}

DensityResult result_for_tests(const std::string& system) {
    DensityResult r;
    r.system = system;
    r.count = 4;
    r.all_launched_ms = 20;
    r.all_booted_ms = 2000;
    r.all_exited_ms = 2500;
    r.marker_ms = {1500, 1900, 1700, 1600};
    r.overhead_rss_kib = 4 * 2600;
    r.overhead_pss_kib = 4 * 1000;
    r.guest_ram_kib = system == kCrun ? 0 : 4 * 100000;
    r.mem_available_drop_kib = 4 * 110000;
    return r;
}

}  // namespace

TEST_CASE("MemAvailable is read from /proc/meminfo text", "[bench][density]") {
    const std::string meminfo =
        "MemTotal:       24589636 kB\n"
        "MemFree:         1234567 kB\n"
        "MemAvailable:   20123456 kB\n"
        "Buffers:          123456 kB\n";
    CHECK(mem_available_kib(meminfo) == uint64_t{20123456});
    CHECK_FALSE(mem_available_kib("MemTotal: 1 kB\n").has_value());
    CHECK_FALSE(mem_available_kib("MemAvailable: lots\n").has_value());
    CHECK_FALSE(mem_available_kib("").has_value());
}

TEST_CASE("the density report gives rates and memory per instance", "[bench][density]") {
    auto setup = setup_for_tests(kKeel);
    setup.base.emulated = true;
    const auto result = result_for_tests(kKeel);
    const std::string text = density_report_text(setup, result);
    CHECK_THAT(text, Catch::Contains("4 keel VMs started at once"));
    CHECK_THAT(text, Catch::Contains("all launched after 20.0 ms (200.0 launches/s)"));
    CHECK_THAT(text, Catch::Contains("after 2000.0 ms from the first launch: 2.00 boots/s"));
    CHECK_THAT(text, Catch::Contains("median 1650.0 ms [1500.0-1900.0]"));
    CHECK_THAT(text, Catch::Contains("THE HOST IS EMULATED"));
    CHECK_THAT(text, Catch::Contains("guest RAM touched"));
    CHECK_THAT(text, Catch::Matches("(.|\n)*VMM PSS +1000 \\(RSS 2600\\)(.|\n)*"));
    CHECK_THAT(text, Catch::Matches("(.|\n)*process total \\(PSS \\+ guest RAM\\) +101000\n(.|\n)*"));
    CHECK_THAT(text, Catch::Matches("(.|\n)*host MemAvailable drop +110000\n(.|\n)*"));

    const auto json = density_report_json(setup, result);
    CHECK(json["setup"]["system"] == "keel");
    CHECK(json["setup"]["count"] == 4);
    CHECK(json["setup"]["memory_mib"] == 128);
    CHECK(json["boots_per_second"].get<double>() == Approx(2.0));
    CHECK(json["launches_per_second"].get<double>() == Approx(200.0));
    CHECK(json["launch_to_marker_ms"]["each"].size() == 4);
    CHECK(json["launch_to_marker_ms"]["median"].get<double>() == Approx(1650.0));
    CHECK(json["per_instance_kib"]["overhead_pss"].get<double>() == Approx(1000));
    CHECK(json["per_instance_kib"]["guest_ram_touched"].get<double>() == Approx(100000));
    CHECK(json["per_instance_kib"]["total_pss_and_guest_ram"].get<double>() == Approx(101000));
    CHECK(json["per_instance_kib"]["mem_available_drop"].get<double>() == Approx(110000));
}

TEST_CASE("a container density report has no guest RAM, a missing MemAvailable is null", "[bench][density]") {
    const auto setup = setup_for_tests(kCrun);
    auto result = result_for_tests(kCrun);
    result.mem_available_drop_kib.reset();
    const std::string text = density_report_text(setup, result);
    CHECK_THAT(text, Catch::Contains("4 crun containers started at once"));
    CHECK_THAT(text, !Catch::Contains("guest RAM touched"));
    CHECK_THAT(text, !Catch::Contains("MemAvailable drop  "));
    CHECK_THAT(text, !Catch::Contains("EMULATED"));
    CHECK(density_report_json(setup, result)["per_instance_kib"]["mem_available_drop"].is_null());
}
