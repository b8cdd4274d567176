#include "bench/density_report.h"

#include <charconv>
#include <cstdio>
#include <sstream>

#include "common/text_lines.h"

namespace keel::bench {

std::optional<uint64_t> mem_available_kib(std::string_view meminfo) {
    constexpr std::string_view key = "MemAvailable:";
    TextLines lines(meminfo);
    while (const auto next_line = lines.next()) {
        const std::string_view line = *next_line;
        if (!line.starts_with(key)) continue;
        const auto digits = line.find_first_of("0123456789", key.size());
        if (digits == std::string_view::npos) return std::nullopt;
        uint64_t value = 0;
        if (std::from_chars(line.data() + digits, line.data() + line.size(), value).ec != std::errc())
            return std::nullopt;
        return value;
    }
    return std::nullopt;
}

namespace {

double per_second(unsigned count, double ms) {
    return ms > 0 ? count * 1000.0 / ms : 0;
}

}  // namespace

std::string density_report_text(const DensitySetup& setup, const DensityResult& r) {
    const CompareSetup& base = setup.base;
    const bool vm = is_vm_system(r.system);
    std::ostringstream out;
    char line[256];
    out << "keel bench density: " << r.count << " " << (vm ? r.system + " VMs" : r.system + " containers")
        << " started at once\n";
    out << "kernel " << base.kernel << ", initrd " << base.initrd << ", payload " << base.payload << ", " << base.vcpus
        << " vCPU" << (base.vcpus == 1 ? "" : "s") << ", " << (base.memory_bytes >> 20) << " MiB each\n";
    out << "host: " << base.host << "\n";
    if (base.emulated) {
        out << "THE HOST IS EMULATED (QEMU TCG): times are emulated and mean nothing alone; memory and counts do.\n";
    }
    std::snprintf(line, sizeof line, "\nall launched after %.1f ms (%.1f launches/s)\n", r.all_launched_ms,
                  per_second(r.count, r.all_launched_ms));
    out << line;
    std::snprintf(line, sizeof line, "all booted (every marker) after %.1f ms from the first launch: %.2f boots/s\n",
                  r.all_booted_ms, per_second(r.count, r.all_booted_ms));
    out << line;
    const Spread each = spread_of(r.marker_ms);
    std::snprintf(line, sizeof line, "each instance, launch -> marker: median %.1f ms [%.1f-%.1f]\n", each.median,
                  each.min, each.max);
    out << line;
    std::snprintf(line, sizeof line, "all ended after %.1f ms from the first launch\n", r.all_exited_ms);
    out << line;
    const double n = r.count > 0 ? r.count : 1;
    out << "\nhost memory per instance, KiB (when all had booted):\n";
    std::snprintf(line, sizeof line, "  %-44s %10.0f (RSS %.0f)\n", vm ? "VMM PSS" : "runtime + payload PSS",
                  static_cast<double>(r.overhead_pss_kib) / n, static_cast<double>(r.overhead_rss_kib) / n);
    out << line;
    if (vm) {
        std::snprintf(line, sizeof line, "  %-44s %10.0f\n", "guest RAM touched",
                      static_cast<double>(r.guest_ram_kib) / n);
        out << line;
    }
    std::snprintf(line, sizeof line, "  %-44s %10.0f\n", "process total (PSS + guest RAM)",
                  static_cast<double>(r.overhead_pss_kib + r.guest_ram_kib) / n);
    out << line;
    if (r.mem_available_drop_kib) {
        std::snprintf(line, sizeof line, "  %-44s %10.0f\n", "host MemAvailable drop",
                      static_cast<double>(*r.mem_available_drop_kib) / n);
        out << line;
    }
    out << "\nPSS shares each page among the processes that map it, so K instances of one binary\n"
           "split its code; the MemAvailable drop is everything the host gave up, kernel page tables\n"
           "and KVM's own state included (and anything else the host did meanwhile).\n";
    return out.str();
}

nlohmann::json density_report_json(const DensitySetup& setup, const DensityResult& r) {
    const CompareSetup& base = setup.base;
    nlohmann::json out;
    out["setup"] = {{"system", r.system},
                    {"count", r.count},
                    {"kernel", base.kernel},
                    {"initrd", base.initrd},
                    {"payload", base.payload},
                    {"vcpus", base.vcpus},
                    {"memory_mib", base.memory_bytes >> 20},
                    {"host", base.host},
                    {"emulated", base.emulated}};
    const Spread each = spread_of(r.marker_ms);
    out["all_launched_ms"] = r.all_launched_ms;
    out["launches_per_second"] = per_second(r.count, r.all_launched_ms);
    out["all_booted_ms"] = r.all_booted_ms;
    out["boots_per_second"] = per_second(r.count, r.all_booted_ms);
    out["all_exited_ms"] = r.all_exited_ms;
    out["launch_to_marker_ms"] = {{"min", each.min}, {"median", each.median}, {"max", each.max}, {"each", r.marker_ms}};
    const double n = r.count > 0 ? r.count : 1;
    out["per_instance_kib"] = {
        {"overhead_rss", static_cast<double>(r.overhead_rss_kib) / n},
        {"overhead_pss", static_cast<double>(r.overhead_pss_kib) / n},
        {"guest_ram_touched", static_cast<double>(r.guest_ram_kib) / n},
        {"total_pss_and_guest_ram", static_cast<double>(r.overhead_pss_kib + r.guest_ram_kib) / n},
        {"mem_available_drop", r.mem_available_drop_kib
                                   ? nlohmann::json(static_cast<double>(*r.mem_available_drop_kib) / n)
                                   : nlohmann::json(nullptr)},
    };
    return out;
}

}  // namespace keel::bench
