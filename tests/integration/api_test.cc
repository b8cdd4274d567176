// keel's Firecracker-compatible API socket, driven as Firecracker's users
// drive it: curl --unix-socket, the getting-started sequence, then pause,
// resume, a flood of malformed requests and Ctrl-Alt-Del, asserting on what
// the guest itself prints. The [cli] case needs no KVM.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <charconv>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "api_client.h"
#include "guest_boot.h"

using namespace keel::test;
using namespace std::chrono_literals;

namespace {

// keel's console output as it arrives, for the client thread to wait on.
class SharedOutput {
public:
    void update(const std::string& out) {
        const std::lock_guard guard(m_lock);
        m_out = out;
        m_changed.notify_all();
    }
    void finish() {
        const std::lock_guard guard(m_lock);
        m_finished = true;
        m_changed.notify_all();
    }
    template <class Predicate>
    bool wait_for(Predicate predicate, std::chrono::seconds timeout) {
        std::unique_lock lock(m_lock);
        m_changed.wait_for(lock, timeout, [&] { return m_finished || predicate(m_out); });
        return predicate(m_out);
    }
    std::string get() {
        const std::lock_guard guard(m_lock);
        return m_out;
    }

private:
    std::mutex m_lock;
    std::condition_variable m_changed;
    std::string m_out;
    bool m_finished = false;
};

// The highest `KEEL-TEST tick=N` so far (0 before the first). The output's
// last line may be cut short ("tick=" of "tick=12"): the highest whole number wins.
int ticks(const std::string& out) {
    int highest = 0;
    for (const auto& [key, value] : guest_markers(out)) {
        int tick = 0;
        const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), tick);
        if (key == "tick" && error == std::errc() && tick > highest) highest = tick;
    }
    return highest;
}

// What the client thread saw, checked on the test's thread afterwards
// (Catch2's assertions are not for other threads).
struct Step {
    std::string what;
    bool ok = false;
    std::string detail;
};

struct ApiRun {
    Boot boot;
    std::vector<Step> steps;
    std::vector<std::string> metrics_lines;
};

// A counter summed over every line of a metrics file (each line holds the
// change since the one before).
uint64_t metrics_sum(const std::vector<std::string>& lines, const std::string& group, const std::string& field) {
    uint64_t sum = 0;
    for (const auto& line : lines) {
        const auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.contains(group) && j[group].contains(field)) sum += j[group][field].get<uint64_t>();
    }
    return sum;
}

class Client {
public:
    Client(std::string socket, SharedOutput& output) : m_socket(std::move(socket)), m_output(output) {}

    // A request whose status must be `expected`; false (and the run ends) otherwise.
    bool request(const std::string& what, const std::string& method, const std::string& path, const std::string& body,
                 int expected, HttpReply* reply = nullptr) {
        const auto r = curl_api(m_socket, method, path, body);
        if (reply) *reply = r;
        return check(what, r.status == expected,
                     method + " " + path + " " + body + " -> " + std::to_string(r.status) + " " + r.body);
    }
    bool check(const std::string& what, bool ok, const std::string& detail) {
        m_steps.push_back(Step{what, ok, detail});
        if (!ok) m_gave_up = true;
        return ok;
    }
    bool wait_for_ticks(const std::string& what, int at_least, std::chrono::seconds timeout) {
        const bool ok = m_output.wait_for([&](const std::string& out) { return ticks(out) >= at_least; }, timeout);
        return check(what, ok,
                     "tick " + std::to_string(ticks(m_output.get())) + ", wanted " + std::to_string(at_least));
    }
    bool wait_for_marker(const std::string& what, const std::string& key, const std::string& value,
                         std::chrono::seconds timeout) {
        const bool ok =
            m_output.wait_for([&](const std::string& out) { return marker(out, key) == value; }, timeout);
        return check(what, ok, "KEEL-TEST " + key + "=" + marker(m_output.get(), key).value_or("(none)") +
                                   ", wanted " + value);
    }
    [[nodiscard]] int ticks_now() { return ticks(m_output.get()); }
    [[nodiscard]] bool gave_up() const { return m_gave_up.load(); }
    [[nodiscard]] std::vector<Step> steps() const { return m_steps; }
    [[nodiscard]] const std::string& socket() const { return m_socket; }

private:
    std::string m_socket;
    SharedOutput& m_output;
    std::vector<Step> m_steps;
    std::atomic<bool> m_gave_up{false};
};

// Firecracker's getting-started guide, step for step, with the test guest as
// the rootfs drive's companion initramfs; the guest prints a tick a second.
bool getting_started(Client& c, const GuestImage& guest, const std::string& rootfs, const std::string& metrics) {
    if (!c.check("keel created the API socket", wait_for_path(c.socket(), 60s), c.socket())) return false;
    // A watcher in the guest reports vda's size whenever it changes (PATCH /drives).
    const std::string watcher =
        "(old=$(cat /sys/block/vda/size); while sleep 0.2; do new=$(cat /sys/block/vda/size); "
        "if [ \"$new\" != \"$old\" ]; then echo \"KEEL-TEST vda-size=$new\"; old=$new; fi; done) &\n";
    const nlohmann::json boot_source = {
        {"kernel_image_path", guest.kernel},
        {"initrd_path", guest.initrd},
        {"boot_args", "console=ttyS0 reboot=k panic=-1 keel.action=tick keel.run=" + base64(watcher)}};
    const nlohmann::json drive = {
        {"drive_id", "rootfs"}, {"path_on_host", rootfs}, {"is_root_device", true}, {"is_read_only", true}};
    HttpReply info;
    return c.request("PUT /boot-source", "PUT", "/boot-source", boot_source.dump(), 204) &&
           c.request("PUT /drives/rootfs", "PUT", "/drives/rootfs", drive.dump(), 204) &&
           c.request("PUT /machine-config", "PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 256})",
                     204) &&
           c.request("PUT /metrics", "PUT", "/metrics", nlohmann::json{{"metrics_path", metrics}}.dump(), 204) &&
           c.request("GET / before the start", "GET", "/", "", 200, &info) &&
           c.check("the state is Not started", info.body.find(R"("state":"Not started")") != std::string::npos,
                   info.body) &&
           c.request("InstanceStart", "PUT", "/actions", R"({"action_type": "InstanceStart"})", 204) &&
           c.request("a pre-boot request after the start is refused", "PUT", "/machine-config",
                     R"({"vcpu_count": 1, "mem_size_mib": 128})", 400) &&
           c.wait_for_ticks("the guest booted and ticks", 3, 240s);
}

// PATCH /drives/rootfs to a larger file: the guest sees the new size at once
// (a configuration change interrupt), and GET /vm/config the new path.
bool change_drive(Client& c, const std::string& larger) {
    HttpReply config;
    const auto patch = [](const std::string& id, const std::string& path) {
        return nlohmann::json{{"drive_id", id}, {"path_on_host", path}}.dump();
    };
    return c.request("PATCH /drives/rootfs", "PATCH", "/drives/rootfs", patch("rootfs", larger), 204) &&
           c.wait_for_marker("the guest saw the larger drive", "vda-size", "16384", 120s) &&
           c.request("GET /vm/config after the change", "GET", "/vm/config", "", 200, &config) &&
           c.check("GET /vm/config shows the new file", config.body.find(larger) != std::string::npos, config.body) &&
           c.request("PATCH of a drive keel does not have", "PATCH", "/drives/nosuch", patch("nosuch", larger), 400);
}

// While paused, no tick may appear; after the resume they come again.
bool pause_and_resume(Client& c) {
    HttpReply info;
    if (!c.request("PATCH /vm Paused", "PATCH", "/vm", R"({"state": "Paused"})", 204) ||
        !c.request("GET / while paused", "GET", "/", "", 200, &info) ||
        !c.check("the state is Paused", info.body.find(R"("state":"Paused")") != std::string::npos, info.body)) {
        return false;
    }
    std::this_thread::sleep_for(1s);  // ticks already on their way through the pipe arrive
    const int at_pause = c.ticks_now();
    std::this_thread::sleep_for(5s);
    const int after_pause = c.ticks_now();
    if (!c.check("no tick while paused", after_pause == at_pause,
                 "tick " + std::to_string(at_pause) + " at the pause, " + std::to_string(after_pause) + " 5 s later")) {
        return false;
    }
    return c.request("PATCH /vm Resumed", "PATCH", "/vm", R"({"state": "Resumed"})", 204) &&
           c.wait_for_ticks("ticks again after the resume", after_pause + 2, 60s);
}

// 1,000 malformed requests: each answered with a 4xx or the connection closed,
// never a 5xx; the API still answers and the guest still ticks.
bool survive_malformed_requests(Client& c) {
    size_t bad = 0;
    std::string first_bad;
    for (size_t i = 0; i < 1000; ++i) {
        const auto reply = raw_exchange(c.socket(), malformed_request(i), 10s);
        if (reply.empty() || reply.starts_with("HTTP/1.1 4")) continue;
        if (bad++ == 0) first_bad = "request " + std::to_string(i) + " -> " + reply.substr(0, 200);
    }
    if (!c.check("every malformed request got a 4xx or a close", bad == 0,
                 std::to_string(bad) + " did not; first: " + first_bad)) {
        return false;
    }
    HttpReply info;
    const int now = c.ticks_now();
    return c.request("GET / after the flood", "GET", "/", "", 200, &info) &&
           c.check("the state is Running", info.body.find(R"("state":"Running")") != std::string::npos, info.body) &&
           c.wait_for_ticks("the guest still ticks after the flood", now + 2, 60s);
}

// FlushMetrics writes a line; GET /metrics shows the VM's exits and the root
// drive's reads, in both text formats.
bool read_metrics(Client& c) {
    HttpReply text, open;
    return c.request("FlushMetrics", "PUT", "/actions", R"({"action_type": "FlushMetrics"})", 204) &&
           c.request("GET /metrics", "GET", "/metrics", "", 200, &text) &&
           c.check("Prometheus text counts vCPU exits and the root drive's reads",
                   text.body.find("keel_vcpu_exits_total{kind=\"exit_io_out\"} ") != std::string::npos &&
                       text.body.find("keel_block_read_bytes_total{device=\"rootfs\"} ") != std::string::npos &&
                       text.body.find("keel_vm_paused 0") != std::string::npos,
                   text.body) &&
           [&] {
               open = curl_api(c.socket(), "GET", "/metrics", "", {"Accept: application/openmetrics-text"});
               return c.check("OpenMetrics when asked", open.status == 200 && open.body.ends_with("# EOF\n"),
                              open.body.substr(open.body.size() > 300 ? open.body.size() - 300 : 0));
           }();
}

ApiRun run_through_api(const GuestImage& guest) {
    const auto dir = scratch_dir();
    const std::string socket = dir + "/keel.sock";
    const std::string rootfs = dir + "/rootfs.img";
    std::ofstream(rootfs, std::ios::binary).seekp(4 * 1024 * 1024 - 1) << '\0';  // 8192 sectors
    const std::string larger = dir + "/rootfs-larger.img";
    std::ofstream(larger, std::ios::binary).seekp(8 * 1024 * 1024 - 1) << '\0';  // 16384 sectors
    const std::string stats_path = dir + "/stats.json";
    const std::string metrics_path = dir + "/metrics.json";
    SharedOutput output;
    Client client(socket, output);
    std::thread client_thread([&] {
        try {
            if (getting_started(client, guest, rootfs, metrics_path) && change_drive(client, larger) &&
                pause_and_resume(client) &&
                survive_malformed_requests(client) && read_metrics(client)) {
                client.request("SendCtrlAltDel", "PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})", 204);
            }
        } catch (const std::exception& e) {
            client.check("the client ran to its end", false, e.what());
        }
    });
    ProcessOptions options;
    options.watch = [&](const std::string& out) { output.update(out); };
    options.kill_when = [&](const std::string&) { return client.gave_up(); };
    // Firecracker's own command line: no VM until the API describes one.
    Boot boot = run_keel_boot({keel_binary(), "--api-sock", socket, "--stats-json", stats_path}, stats_path, options);
    output.finish();
    client_thread.join();
    ApiRun run{std::move(boot), client.steps(), {}};
    std::ifstream metrics(metrics_path);
    for (std::string line; std::getline(metrics, line);) run.metrics_lines.push_back(line);
    return run;
}

}  // namespace

TEST_CASE(
    "a guest booted through the API socket changes its drive, pauses, resumes, outlives 1000 malformed requests "
    "and stops on Ctrl-Alt-Del",
    "[kvm]") {
    const auto guest = stock_guest();
    const auto run = retry_once_after_emulated_host_failure("api", [&] { return run_through_api(guest); });
    INFO("guest console:\n" << run.boot.result.out << "\nkeel stderr:\n" << run.boot.result.err);
    for (const auto& step : run.steps) {
        INFO(step.what << ": " << step.detail);
        CHECK(step.ok);
    }
    require_clean_exit(run.boot);
    CHECK(marker(run.boot.result.out, "cpus") == "2");
    CHECK(marker(run.boot.result.out, "disks") == "vda:8192:1:");
    CHECK(run.boot.result.out.find("root=/dev/vda ro") != std::string::npos);
    // Ctrl-Alt-Del reached the guest's init, which powered off.
    CHECK(marker(run.boot.result.out, "ctrl-alt-del") == "received");
    CHECK(run.boot.stats["stop_reason"] == "poweroff");
    // FlushMetrics wrote a line and keel one more at the end; each is JSON.
    INFO("metrics file:\n" << [&] {
        std::string all;
        for (const auto& line : run.metrics_lines) all += line + "\n";
        return all;
    }());
    CHECK(run.metrics_lines.size() >= 2);
    for (const auto& line : run.metrics_lines) CHECK_FALSE(nlohmann::json::parse(line, nullptr, false).is_discarded());
    // InstanceStart, FlushMetrics and SendCtrlAltDel.
    CHECK(metrics_sum(run.metrics_lines, "put_api_requests", "actions_count") == 3);
    CHECK(metrics_sum(run.metrics_lines, "vcpu", "exit_io_out") > 0);
    CHECK(metrics_sum(run.metrics_lines, "block_rootfs", "read_bytes") > 0);
}

TEST_CASE(
    "keel --api-sock without a VM answers the API, refuses InstanceStart it cannot do, and removes its socket "
    "on SIGTERM",
    "[cli]") {
    const auto dir = scratch_dir();
    const std::string socket = dir + "/keel.sock";
    SharedOutput output;
    Client client(socket, output);
    std::atomic<pid_t> keel_pid{0};
    std::thread client_thread([&] {
        HttpReply r;
        if (client.check("keel created the API socket", wait_for_path(socket, 30s), socket)) {
            client.request("GET /version", "GET", "/version", "", 200, &r);
            client.check("the version names the Firecracker API",
                         r.body.find("firecracker_version") != std::string::npos, r.body);
            client.request("PUT /machine-config", "PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 64})",
                           204);
            client.request("GET /machine-config", "GET", "/machine-config", "", 200, &r);
            client.check("the machine config was applied", r.body.find(R"("vcpu_count":2)") != std::string::npos,
                         r.body);
            client.request("InstanceStart without a kernel", "PUT", "/actions", R"({"action_type": "InstanceStart"})",
                           400, &r);
            client.check("the fault names the missing kernel",
                         r.body.find("without kernel configuration") != std::string::npos, r.body);
            client.request("a runtime action before the start", "PATCH", "/vm", R"({"state": "Paused"})", 400);
            client.request("an unknown field", "PUT", "/machine-config", R"({"vcpu_count": 1, "cpus": 1})", 400, &r);
            client.check("the fault names the field", r.body.find("cpus") != std::string::npos, r.body);
        }
        if (keel_pid.load() > 0) ::kill(keel_pid.load(), SIGTERM);
    });
    ProcessOptions options;
    options.timeout = 120s;
    options.started = [&](pid_t pid) { keel_pid = pid; };
    const auto result = run_process({keel_binary(), "--api-sock", socket}, options);
    client_thread.join();
    INFO("keel stderr:\n" << result.err);
    for (const auto& step : client.steps()) {
        INFO(step.what << ": " << step.detail);
        CHECK(step.ok);
    }
    CHECK(result.exit_code == 128 + SIGTERM);
    CHECK_FALSE(std::filesystem::exists(socket));
}
