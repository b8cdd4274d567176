#include "bench/boot_sample.h"

#include <algorithm>
#include <cstdio>

#include "common/error.h"

namespace keel::bench {
namespace {

const nlohmann::json& member(const nlohmann::json& object, const char* key, const char* where) {
    if (!object.is_object() || !object.contains(key)) {
        throw Error(std::string("keel statistics: no \"") + key + "\" in " + where);
    }
    return object.at(key);
}

double as_number(const nlohmann::json& value, const std::string& what) {
    if (!value.is_number()) throw Error("keel statistics: " + what + " is not a number");
    return value.get<double>();
}

uint64_t as_count(const nlohmann::json& value, const std::string& what) {
    if (!value.is_number_unsigned() && !(value.is_number_integer() && value.get<int64_t>() >= 0)) {
        throw Error("keel statistics: " + what + " is not a count");
    }
    return value.get<uint64_t>();
}

}  // namespace

std::string guest_mark_name(const std::string& source, uint64_t code) {
    char text[48];
    if (source == "port80") {
        std::snprintf(text, sizeof text, "guest port80 %#04llx", static_cast<unsigned long long>(code));
    } else {
        std::snprintf(text, sizeof text, "guest %s %llu", source.c_str(), static_cast<unsigned long long>(code));
    }
    return text;
}

BootSample sample_from_stats(const nlohmann::json& stats, uint64_t launch_ns, uint64_t exit_ns) {
    BootSample sample;
    const uint64_t start_ns =
        as_count(member(stats, "process_start_monotonic_ns", "the document"), "process_start_monotonic_ns");
    if (start_ns < launch_ns || exit_ns < start_ns) {
        throw Error("keel statistics: the process start lies outside the run (another clock?)");
    }
    const auto ms = [](uint64_t ns) { return static_cast<double>(ns) / 1e6; };
    const double start_ms = ms(start_ns - launch_ns);
    sample.events.emplace_back("process start", start_ms);
    for (const auto& [name, at] : member(stats, "phases_ms", "the document").items()) {
        sample.events.emplace_back(name, start_ms + as_number(at, "phase '" + name + "'"));
    }
    for (const auto& mark : member(stats, "guest_marks", "the document")) {
        const auto source = member(mark, "source", "a guest mark").get<std::string>();
        const uint64_t code = as_count(member(mark, "code", "a guest mark"), "a guest mark's code");
        sample.events.emplace_back(guest_mark_name(source, code),
                                   start_ms + as_number(member(mark, "ms", "a guest mark"), "a guest mark's time"));
    }
    sample.events.emplace_back("process exit", ms(exit_ns - launch_ns));
    std::stable_sort(sample.events.begin(), sample.events.end(),
                     [](const auto& a, const auto& b) { return a.second < b.second; });

    sample.stop_reason = member(stats, "stop_reason", "the document").get<std::string>();
    const auto& exits = member(stats, "exits", "the document");
    sample.exits_to_keel = as_count(member(exits, "total", "exits"), "exits.total");
    for (const auto& [reason, count] : member(exits, "by_reason", "exits").items()) {
        sample.exits_by_reason[reason] = as_count(count, "exits of reason '" + reason + "'");
    }
    if (const auto kvm = exits.find("kvm"); kvm != exits.end() && kvm->contains("exits")) {
        sample.kvm_exits = as_count(kvm->at("exits"), "exits.kvm.exits");
    }
    for (const auto& [kind, figures] : member(stats, "memory_kib", "the document").items()) {
        sample.rss_kib[kind] = as_count(member(figures, "rss", "a memory kind"), "memory " + kind + " rss");
        sample.pss_kib[kind] = as_count(member(figures, "pss", "a memory kind"), "memory " + kind + " pss");
    }
    if (!sample.rss_kib.contains("overhead")) throw Error("keel statistics: no memory overhead figure");
    return sample;
}

}  // namespace keel::bench
