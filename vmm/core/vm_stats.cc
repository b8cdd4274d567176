#include "core/vm_stats.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "core/boot_clock.h"

namespace keel {

namespace {

constexpr size_t kMaxGuestMarks = 64;

std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
    return buf;
}

std::string fixed(double v, int decimals = 1) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

nlohmann::json kind_json(const MemoryKind& k) { return {{"rss", k.rss_kib}, {"pss", k.pss_kib}}; }

}  // namespace

VmStats::VmStats() : m_start_ns(process_start_ns()) {}

void VmStats::phase(const std::string& name) { phase_at(name, monotonic_ns()); }

void VmStats::phase_at(const std::string& name, uint64_t at_ns) { m_phases.emplace_back(name, at_ns); }

void VmStats::guest_mark(const std::string& source, uint8_t code, uint64_t at_ns) {
    std::lock_guard lock(m_marks_mutex);
    if (m_marks.size() < kMaxGuestMarks) m_marks.push_back({source, code, at_ns});
}

double VmStats::ms_since_start(uint64_t at_ns) const {
    return static_cast<double>(at_ns - m_start_ns) / 1e6;
}

std::string VmStats::device_name(const std::vector<NamedDevice>& ranges, uint64_t addr) const {
    for (const auto& d : ranges) {
        if (addr >= d.base && addr - d.base < d.length) return d.name;
    }
    return "unclaimed";
}

std::vector<std::pair<std::string, double>> VmStats::boot_times_ms() const {
    std::vector<std::pair<std::string, double>> times;
    for (const auto& [name, at] : m_phases) times.emplace_back(name, ms_since_start(at));
    std::lock_guard lock(m_marks_mutex);
    for (const auto& m : m_marks) {
        char code[8];
        std::snprintf(code, sizeof code, m.source == "mmio" ? "%u" : "0x%02x", m.code);
        times.emplace_back("guest " + m.source + " " + code, ms_since_start(m.at_ns));
    }
    return times;
}

nlohmann::json VmStats::to_json() const {
    nlohmann::json j;
    j["stop_reason"] = stop_reason;
    if (!stop_detail.empty()) j["stop_detail"] = stop_detail;
    j["vcpus"] = vcpus;
    j["guest_memory_mib"] = guest_memory_bytes >> 20;
    j["guest_memory_backing"] = guest_memory_backing;
    j["seccomp"] = {{"mode", seccomp_mode}, {"allowed_syscalls", seccomp_allowed_syscalls}};
    // CLOCK_MONOTONIC when keel started: lets a launcher (keel bench boot)
    // add the cost of starting the process to the phases below.
    j["process_start_monotonic_ns"] = m_start_ns;
    auto& phases = j["phases_ms"] = nlohmann::json::object();
    for (const auto& [name, at] : m_phases) phases[name] = ms_since_start(at);
    j["guest_marks"] = nlohmann::json::array();
    {
        std::lock_guard lock(m_marks_mutex);
        for (const auto& m : m_marks) {
            j["guest_marks"].push_back({{"source", m.source}, {"code", m.code}, {"ms", ms_since_start(m.at_ns)}});
        }
    }
    auto& exits_json = j["exits"];
    exits_json["total"] = exits.total();
    exits_json["by_reason"] = nlohmann::json::object();
    for (uint32_t r = 0; r < ExitCounters::kReasons; ++r) {
        if (exits.by_reason[r] != 0) exits_json["by_reason"][exit_reason_name(r)] = exits.by_reason[r];
    }
    exits_json["pio"] = nlohmann::json::array();
    for (const auto& [port, n] : exits.pio_by_port) {
        exits_json["pio"].push_back({{"port", hex(port)}, {"device", device_name(pio_devices, port)}, {"count", n}});
    }
    exits_json["mmio"] = nlohmann::json::array();
    for (const auto& [addr, n] : exits.mmio_by_address) {
        exits_json["mmio"].push_back({{"address", hex(addr)}, {"device", device_name(mmio_devices, addr)}, {"count", n}});
    }
    exits_json["other_addresses"] = exits.other_addresses;
    exits_json["kvm"] = kvm_counters;
    auto& mem = j["memory_kib"];
    mem["overhead"] = kind_json(memory.overhead());
    mem["binary"] = kind_json(memory.binary);
    mem["libraries"] = kind_json(memory.libraries);
    mem["heap"] = kind_json(memory.heap);
    mem["stacks"] = kind_json(memory.stacks);
    mem["kvm"] = kind_json(memory.kvm);
    mem["other"] = kind_json(memory.other);
    mem["guest_ram_touched"] = kind_json(memory.guest_ram);
    j["vcpus_at_stop"] = vcpus_at_stop;
    j["devices"] = nlohmann::json::array();
    for (const auto& device : devices) {
        nlohmann::json counters = nlohmann::json::object();
        for (const auto& [name, value] : device.counters) counters[name] = value;
        j["devices"].push_back({{"name", device.name},
                                {"type", device.type},
                                {"transport", device.transport},
                                {"counters", counters},
                                {"queues", device.queues}});
    }
    return j;
}

std::string VmStats::to_text() const {
    std::ostringstream out;
    out << "keel: guest " << stop_reason << (stop_detail.empty() ? "" : " (" + stop_detail + ")") << "\n";
    out << "boot phases (ms since keel started):\n";
    auto events = m_phases;
    {
        std::lock_guard lock(m_marks_mutex);
        for (const auto& m : m_marks) {
            events.emplace_back("guest mark " + m.source + " " + std::to_string(m.code) +
                                    (m.source == "mmio" && m.code == 123 ? " (userspace started)" : ""),
                                m.at_ns);
        }
    }
    std::stable_sort(events.begin(), events.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    for (const auto& [name, at] : events) {
        char line[160];
        std::snprintf(line, sizeof line, "  %-40s %10s\n", name.c_str(), fixed(ms_since_start(at), 2).c_str());
        out << line;
    }
    if (const auto all = kvm_counters.find("exits"); all != kvm_counters.end()) {
        out << "VM exits (all, counted by KVM): " << all->second << "\n";
        for (const auto& [name, n] : kvm_counters) {
            if (name != "exits" && name.ends_with("_exits") && n != 0) out << "  " << name << ": " << n << "\n";
        }
        // Most exits have no counter of their own (MSR accesses, nested page
        // faults, ...); KVM's other event counts hint at what they were.
        std::string others;
        for (const char* name : {"irq_injections", "nmi_injections", "req_event", "pf_taken", "pf_fixed",
                                 "pf_emulate", "insn_emulation", "insn_emulation_fail", "hypercalls",
                                 "host_state_reload", "fpu_reload", "halt_wakeup", "halt_successful_poll",
                                 "directed_yield_attempted", "preemption_reported"}) {
            if (const auto it = kvm_counters.find(name); it != kvm_counters.end() && it->second != 0) {
                others += " " + it->first + "=" + std::to_string(it->second);
            }
        }
        if (!others.empty()) out << "  other KVM counts:" << others << "\n";
    }
    out << "VM exits to keel: " << exits.total() << "\n";
    for (uint32_t r = 0; r < ExitCounters::kReasons; ++r) {
        if (exits.by_reason[r] != 0) out << "  " << exit_reason_name(r) << ": " << exits.by_reason[r] << "\n";
    }
    std::vector<std::pair<uint64_t, std::string>> top;
    for (const auto& [port, n] : exits.pio_by_port) top.emplace_back(n, "port " + hex(port) + " " + device_name(pio_devices, port));
    for (const auto& [addr, n] : exits.mmio_by_address) top.emplace_back(n, "mmio " + hex(addr) + " " + device_name(mmio_devices, addr));
    std::sort(top.rbegin(), top.rend());
    if (top.size() > 8) top.resize(8);
    for (const auto& [n, what] : top) out << "    " << what << ": " << n << "\n";
    const auto overhead = memory.overhead();
    out << "VMM memory overhead (excluding guest RAM): RSS " << fixed(static_cast<double>(overhead.rss_kib) / 1024.0)
        << " MiB, PSS " << fixed(static_cast<double>(overhead.pss_kib) / 1024.0) << " MiB\n";
    const auto row = [&](const char* name, const MemoryKind& k) {
        out << "  " << name << ": RSS " << k.rss_kib << " KiB, PSS " << k.pss_kib << " KiB\n";
    };
    row("binary", memory.binary);
    row("libraries", memory.libraries);
    row("heap", memory.heap);
    row("stacks", memory.stacks);
    row("kvm", memory.kvm);
    row("other", memory.other);
    out << "guest RAM touched: " << fixed(static_cast<double>(memory.guest_ram.rss_kib) / 1024.0) << " MiB of "
        << (guest_memory_bytes >> 20) << " MiB (" << guest_memory_backing << ")\n";
    out << "seccomp: " << seccomp_mode;
    if (!seccomp_allowed_syscalls.empty()) {
        out << " (system calls allowed:";
        for (const auto& [role, count] : seccomp_allowed_syscalls) out << " " << role << " " << count;
        out << ")";
    }
    out << "\n";
    for (size_t i = 0; i < vcpus_at_stop.size(); ++i) {
        if (!vcpus_at_stop[i].empty()) out << "vCPU " << i << " at stop: " << vcpus_at_stop[i] << "\n";
    }
    if (!devices.empty()) out << "virtio devices:\n";
    for (const auto& device : devices) {
        out << "  " << device.name << " (" << device.type << ", " << device.transport << "):";
        for (const auto& [name, value] : device.counters) out << " " << name << "=" << value;
        out << "\n";
        for (const auto& queue : device.queues) out << "    " << queue << "\n";
    }
    return out.str();
}

}  // namespace keel
