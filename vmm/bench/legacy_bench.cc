#include "bench/legacy_bench.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <thread>

#include "bench/child_process.h"
#include "bench/host_kind.h"
#include "bench/http_probe.h"
#include "bench/legacy_report.h"
#include "bench/process_probe.h"
#include "bench/system_run.h"
#include "common/error.h"
#include "core/boot_clock.h"

namespace keel::bench {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kNsPerMs = 1'000'000;
// How often the bench asks for the page, and how long one try may take to
// connect: short, so the first 200 is seen within ~0.1 s of the service
// answering (a guest whose eth0 is not up yet leaves the SYN unanswered).
constexpr uint64_t kProbeIntervalNs = 100 * kNsPerMs;
constexpr unsigned kConnectTimeoutMs = 250;
constexpr unsigned kReplyTimeoutMs = 3000;

std::string join(const std::vector<std::string>& args) {
    std::string text;
    for (const auto& arg : args) text += (text.empty() ? "" : " ") + arg;
    return text;
}

// Runs a setup command (ip, debugfs, cp, crun kill) to its end; throws
// keel::Error with its telling line when it fails.
void run_checked(const std::vector<std::string>& args, const std::string& log, const std::string& what,
                 unsigned timeout_seconds = 300) {
    const Child child = spawn_child(args, ChildStdio{.log_path = log});
    uint64_t exit_ns = 0;
    const auto status = wait_for_child(child.pid, uint64_t{timeout_seconds} * kNsPerSecond, exit_ns);
    if (!status)
        throw Error(what + ": '" + join(args) + "' did not end within " + std::to_string(timeout_seconds) + " s");
    if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
        throw Error(what + ": '" + join(args) + "' failed, " + describe_wait_status(*status) + ": " +
                    telling_line(log));
    }
}

// The bench's private network (see LegacyNet): both namespaces made and
// wired, and the bench process itself moved into the bench's namespace, so
// that keel (which opens the TAP by name) and the HTTP probes run there.
// Everything is undone at the end, also when the bench fails.
class ScopedNetwork {
public:
    ScopedNetwork(LegacyNet net, const std::string& log) : m_net(std::move(net)) {
        try {
            run_checked({"ip", "netns", "add", m_net.bench_ns}, log, "cannot create the bench's network namespace");
            m_bench_made = true;
            run_checked({"ip", "netns", "add", m_net.container_ns}, log,
                        "cannot create the container's network namespace");
            m_container_made = true;
            for (const auto& command : legacy_net_commands(m_net)) {
                run_checked(command, log, "cannot set up the bench's link-local network");
            }
            m_home = UniqueFd(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
            if (!m_home.valid()) throw_errno("cannot open the bench's own network namespace");
            const UniqueFd bench(::open(netns_path(m_net.bench_ns).c_str(), O_RDONLY | O_CLOEXEC));
            if (!bench.valid() || ::setns(bench.get(), CLONE_NEWNET) != 0) {
                throw_errno("cannot enter the network namespace " + m_net.bench_ns);
            }
        } catch (...) {
            undo();
            throw;
        }
    }
    ~ScopedNetwork() { undo(); }
    ScopedNetwork(const ScopedNetwork&) = delete;
    ScopedNetwork& operator=(const ScopedNetwork&) = delete;

    // Where `ip netns add` pins a namespace (what crun joins).
    static std::string netns_path(const std::string& name) { return "/run/netns/" + name; }

private:
    void undo() noexcept {
        if (m_home.valid()) (void)::setns(m_home.get(), CLONE_NEWNET);
        m_home.reset();
        // Deleting a namespace destroys the TAP and the veth pair in it.
        for (auto [made, name] : {std::pair{&m_container_made, m_net.container_ns}, {&m_bench_made, m_net.bench_ns}}) {
            if (!*made) continue;
            *made = false;
            run_cleanup({"ip", "netns", "del", name});
        }
    }

    LegacyNet m_net;
    UniqueFd m_home;
    bool m_bench_made = false;
    bool m_container_made = false;
};

// A container whose `crun run` is gone already (reaped) may still exist: crun
// deletes it, which also kills whatever still runs in it.
void delete_container(const std::string& id) {
    if (!id.empty()) run_cleanup({"crun", "delete", "--force", id});
}

class LegacyRunner {
public:
    LegacyRunner(const LegacySetup& setup, const LegacyNet& net, std::string dir)
        : m_setup(setup), m_net(net), m_dir(std::move(dir)) {}

    // The container's bundle, once: the image's files, read-only, plus the
    // writable tmpfs directories (LegacyNet and WritableDir say why).
    void prepare_container() {
        const std::string rootfs = m_dir + "/bundle/rootfs";
        fs::create_directories(rootfs);
        run_checked(rootfs_extract_command(m_setup.rootfs, rootfs), m_dir + "/extract.log",
                    "cannot copy the legacy image's files out of " + m_setup.rootfs);
        std::error_code error;
        for (const char* needed : {"/usr/sbin/lighttpd", "/etc/lighttpd/lighttpd.conf", "/var/www/html/index.html"}) {
            if (!fs::exists(rootfs + needed, error)) {
                throw Error("the files copied out of " + m_setup.rootfs + " have no " + needed + " (see " + m_dir +
                            "/extract.log; rebuild the image with guest-images/build-legacy-image)");
            }
        }
        std::vector<WritableDir> writable;
        for (const auto& path : legacy_writable_paths()) {
            WritableDir dir{path, 0, 0, path == "/tmp" ? 01777U : 0755U};
            struct stat st {};
            if (::stat((rootfs + path).c_str(), &st) == 0) {
                dir.uid = st.st_uid;
                dir.gid = st.st_gid;
                dir.mode = st.st_mode & 07777U;
            }
            writable.push_back(dir);
        }
        write_text_file(m_dir + "/bundle/config.json",
                        legacy_oci_config(ScopedNetwork::netns_path(m_net.container_ns), writable).dump(2) + "\n",
                        "container configuration");
    }

    LegacySample run_keel(unsigned run) {
        const std::string name = m_dir + "/keel-" + std::to_string(run);
        const std::string which = "keel run " + std::to_string(run);
        // A fresh copy each run, made before the launch: the VM writes to its disk.
        run_checked({"cp", "--sparse=always", m_setup.rootfs, name + ".ext4"}, name + ".cp.log",
                    "cannot copy the legacy image");
        const std::string log = name + ".log";
        const std::string api = name + ".sock";
        Child child = spawn_child(legacy_keel_command(m_setup, m_net, name + ".ext4", api, name + ".stats.json"),
                                  ChildStdio{.log_path = log});
        Running running{child.pid, kLegacyKeel, ""};
        LegacySample sample = serve(running, child.launch_ns, m_net.guest_address, which, log, run);
        const uint64_t stop_ns = monotonic_ns();
        const auto status = unix_socket_request(
            api, http_request("PUT", "/actions", "localhost", R"({"action_type": "SendCtrlAltDel"})"), 30'000);
        if (status != 204) {
            throw Error(which + ": keel's API did not take SendCtrlAltDel (" +
                        (status ? "status " + std::to_string(*status) : std::string("no reply")) + " on " + api +
                        "; log: " + log + ")");
        }
        const uint64_t exit_ns = wait_for_exit(running, child.launch_ns, which, log, {0});
        running.pid = -1;
        sample.exit_ms = ms_between(child.launch_ns, exit_ns);
        sample.stop_ms = ms_between(stop_ns, exit_ns);
        std::ifstream in(name + ".stats.json");
        const auto stats = nlohmann::json::parse(in, nullptr, false);
        if (!stats.is_discarded()) sample.stop_reason = stats.value("stop_reason", "");
        std::error_code error;
        fs::remove(name + ".ext4", error);
        return sample;
    }

    LegacySample run_crun(unsigned run) {
        const std::string name = m_dir + "/crun-" + std::to_string(run);
        const std::string which = "crun run " + std::to_string(run);
        const std::string id = "keel-legacy-" + std::to_string(::getpid()) + "-" + std::to_string(run);
        const std::string log = name + ".log";
        Child child = spawn_child({"crun", "run", "--bundle", m_dir + "/bundle", id}, ChildStdio{.log_path = log});
        Running running{child.pid, kLegacyCrun, id};
        LegacySample sample = serve(running, child.launch_ns, m_net.container_address, which, log, run);
        const uint64_t stop_ns = monotonic_ns();
        run_checked({"crun", "kill", id, "TERM"}, name + ".kill.log", which + ": cannot stop the container", 60);
        // lighttpd ends with 0 on SIGTERM; crun passes a signal death on as 128 + signal.
        const uint64_t exit_ns = wait_for_exit(running, child.launch_ns, which, log, {0, 128 + SIGTERM});
        running.pid = -1;
        sample.exit_ms = ms_between(child.launch_ns, exit_ns);
        sample.stop_ms = ms_between(stop_ns, exit_ns);
        return sample;
    }

private:
    // A launched system; killed (and its container deleted) if the run
    // fails before it ends by itself.
    struct Running {
        pid_t pid;
        std::string system;
        std::string container_id;
        Running(pid_t p, std::string s, std::string id) : pid(p), system(std::move(s)), container_id(std::move(id)) {}
        ~Running() {
            if (pid > 0) abandon_run(pid, system, container_id);
        }
        Running(const Running&) = delete;
        Running& operator=(const Running&) = delete;
    };

    // Polls the service until it serves the page, then samples the memory.
    LegacySample serve(Running& running, uint64_t launch_ns, const std::string& address, const std::string& which,
                       const std::string& log, unsigned run) {
        const uint64_t deadline = launch_ns + uint64_t{m_setup.timeout_seconds} * kNsPerSecond;
        LegacySample sample;
        sample.system = running.system;
        sample.run = run;
        for (;;) {
            int status = 0;
            if (::waitpid(running.pid, &status, WNOHANG) == running.pid) {
                running.pid = -1;  // reaped: nothing left to kill
                delete_container(running.container_id);
                throw Error(which + " ended before serving the page, " + describe_wait_status(status) + ": " +
                            telling_line(log) + " (log: " + log + ")");
            }
            const uint64_t attempt_ns = monotonic_ns();
            if (attempt_ns >= deadline) {
                throw Error(which + " did not serve the page within " + std::to_string(m_setup.timeout_seconds) +
                            " s of its launch (" + std::to_string(sample.http_attempts) + " tries at http://" +
                            address + "/; log: " + log + ")");
            }
            ++sample.http_attempts;
            if (http_reply_serves(http_get(address, 80, kConnectTimeoutMs, kReplyTimeoutMs), m_setup.page_marker)) {
                sample.http_ms = ms_between(launch_ns, monotonic_ns());
                break;
            }
            const uint64_t next = attempt_ns + kProbeIntervalNs;
            if (const uint64_t now = monotonic_ns(); now < next) {
                std::this_thread::sleep_for(std::chrono::nanoseconds(next - now));
            }
        }
        const bool vm = running.system == kLegacyKeel;
        const TreeMemory memory = measure_process_tree(running.pid, vm ? m_setup.memory_bytes : 0);
        sample.overhead_rss_kib = memory.overhead.rss_kib;
        sample.overhead_pss_kib = memory.overhead.pss_kib;
        sample.guest_ram_rss_kib = memory.guest_ram.rss_kib;
        sample.processes = memory.processes;
        return sample;
    }

    // Waits for the stopped system to end with one of `accepted` exit statuses.
    uint64_t wait_for_exit(Running& running, uint64_t launch_ns, const std::string& which, const std::string& log,
                           std::initializer_list<int> accepted) {
        const uint64_t deadline = launch_ns + uint64_t{m_setup.timeout_seconds} * kNsPerSecond;
        const uint64_t now = monotonic_ns();
        uint64_t exit_ns = 0;
        const auto status = wait_for_child(running.pid, deadline > now ? deadline - now : 1, exit_ns);
        if (!status) {
            running.pid = -1;  // wait_for_child killed and reaped it
            delete_container(running.container_id);
            throw Error(which + " did not end within " + std::to_string(m_setup.timeout_seconds) +
                        " s of its launch after it was asked to stop (log: " + log + ")");
        }
        running.pid = -1;
        const bool ok =
            WIFEXITED(*status) && std::find(accepted.begin(), accepted.end(), WEXITSTATUS(*status)) != accepted.end();
        if (!ok) {
            throw Error(which + " failed, " + describe_wait_status(*status) + ": " + telling_line(log) +
                        " (log: " + log + ")");
        }
        return exit_ns;
    }

    const LegacySetup& m_setup;
    const LegacyNet& m_net;
    std::string m_dir;
};

// The image, its page marker, the tools and root, before anything is made.
void check_legacy_prerequisites(LegacySetup& setup) {
    if (setup.image_dir.empty()) setup.image_dir = default_legacy_image_dir();
    setup.kernel = setup.image_dir + "/vmlinuz";
    setup.initrd = setup.image_dir + "/initrd.img";
    setup.rootfs = setup.image_dir + "/rootfs.ext4";
    std::error_code error;
    for (const auto& file : {setup.kernel, setup.initrd, setup.rootfs, setup.image_dir + "/page-marker"}) {
        if (!fs::is_regular_file(file, error)) {
            throw Error("the legacy image is not built in " + setup.image_dir + " (no " +
                        fs::path(file).filename().string() +
                        "): run guest-images/build-legacy-image, or name its directory with --image-dir");
        }
    }
    std::ifstream marker(setup.image_dir + "/page-marker");
    std::getline(marker, setup.page_marker);
    if (setup.page_marker.empty()) {
        throw Error(setup.image_dir + "/page-marker is empty: rebuild the image with guest-images/build-legacy-image");
    }
    if (::geteuid() != 0) {
        throw Error("keel bench legacy needs root (network namespaces, a TAP, crun's containers): run it as root");
    }
    for (const auto& [program, package] : {std::pair{"crun", "crun"}, {"ip", "iproute2"}, {"debugfs", "e2fsprogs"}}) {
        if (!program_in_path(program)) {
            throw Error(std::string(program) + " is not installed (Debian: apt-get install " + package +
                        "; scripts/setup installs it)");
        }
    }
    setup.keel_binary = sibling_program("keel");
}

// After a failure the logs stay for the user (the error names them); the
// image's copies (hundreds of MiB) go.
void drop_images(const std::string& dir) {
    std::error_code error;
    fs::remove_all(dir + "/bundle", error);
    for (const auto& entry : fs::directory_iterator(dir, error)) {
        if (entry.path().extension() == ".ext4") fs::remove(entry.path(), error);
    }
}

}  // namespace

void run_legacy_bench(LegacySetup setup) {
    const HostKind host = host_kind();
    setup.host = host.description;
    setup.emulated = host.emulated;
    check_legacy_prerequisites(setup);

    const std::string dir = make_work_dir("keel-legacy");
    const LegacyNet net = legacy_net(::getpid());
    std::vector<LegacySample> samples;
    try {
        ScopedNetwork network(net, dir + "/network.log");
        LegacyRunner runner(setup, net, dir);
        runner.prepare_container();
        for (unsigned run = 1; run <= setup.runs; ++run) {
            for (const bool keel : {true, false}) {
                samples.push_back(keel ? runner.run_keel(run) : runner.run_crun(run));
                const auto& s = samples.back();
                std::fprintf(stderr,
                             "keel bench legacy: %s run %u of %u: HTTP 200 after %.1f ms (%u tries), exit after "
                             "%.1f ms\n",
                             s.system.c_str(), run, setup.runs, s.http_ms, s.http_attempts, s.exit_ms);
            }
        }
    } catch (const Error&) {
        drop_images(dir);
        throw;
    }
    const auto summary = summarize_legacy(samples);
    std::cout << legacy_report_text(setup, summary) << std::flush;
    if (!setup.json_path.empty()) {
        write_text_file(setup.json_path, legacy_report_json(setup, summary, samples).dump(2) + "\n", "JSON report");
    }
    std::error_code error;
    fs::remove_all(dir, error);
}

}  // namespace keel::bench
