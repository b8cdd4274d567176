#include "net_host.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>
#include <stdexcept>

namespace keel::test {

namespace {

// iproute2's ip: /usr/sbin on Debian 12 (merged /usr), /sbin or /bin elsewhere.
const std::string& ip_binary() {
    static const std::string path = [] {
        for (const char* candidate : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
            if (access(candidate, X_OK) == 0) return std::string(candidate);
        }
        return std::string();
    }();
    return path;
}

ProcessResult ip(const std::vector<std::string>& args) {
    if (ip_binary().empty()) throw std::runtime_error("iproute2's ip is not installed (scripts/setup installs it)");
    std::vector<std::string> argv{ip_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessOptions options;
    options.timeout = std::chrono::seconds(60);
    return run_process(argv, options);
}

void ip_checked(const std::vector<std::string>& args) {
    const auto result = ip(args);
    if (result.exit_code == 0) return;
    std::string command = "ip";
    for (const auto& arg : args) command += " " + arg;
    throw std::runtime_error(command + " failed (exit " + std::to_string(result.exit_code) + "): " + result.err);
}

std::string unique_namespace_name() {
    static std::atomic<unsigned> next{0};
    return "keel-net-" + std::to_string(getpid()) + "-" + std::to_string(next++);
}

}  // namespace

bool can_create_net_namespaces() {
    return geteuid() == 0 && !ip_binary().empty();
}

NetNamespace::NetNamespace() : m_name(unique_namespace_name()) {
    ip_checked({"netns", "add", m_name});
    try {
        ip_checked({"-n", m_name, "link", "set", "lo", "up"});
    } catch (...) {
        (void)ip({"netns", "del", m_name});
        throw;
    }
}

NetNamespace::~NetNamespace() {
    // Whatever a failed test left running here (keel, a host-side nc) would
    // keep the namespace alive after `ip netns del`; the TAPs go first so that
    // none can outlive it.
    const auto pids = ip({"netns", "pids", m_name});
    std::istringstream list(pids.out);
    for (pid_t pid = 0; list >> pid;) {
        if (pid > 1) kill(pid, SIGKILL);
    }
    const auto links = ip({"-n", m_name, "-o", "link", "show", "type", "tun"});
    std::istringstream lines(links.out);
    for (std::string line; std::getline(lines, line);) {
        // "5: ktap0: <BROADCAST,..." -> ktap0
        const auto start = line.find(": ");
        const auto end = line.find(':', start + 2);
        if (start == std::string::npos || end == std::string::npos) continue;
        (void)ip({"-n", m_name, "link", "del", line.substr(start + 2, end - start - 2)});
    }
    const auto deleted = ip({"netns", "del", m_name});
    if (deleted.exit_code != 0) {
        std::fprintf(stderr, "[test harness] ip netns del %s failed: %s\n", m_name.c_str(), deleted.err.c_str());
    }
}

void NetNamespace::add_tap(const std::string& tap, const std::string& host_cidr) const {
    ip_checked({"-n", m_name, "tuntap", "add", "dev", tap, "mode", "tap", "multi_queue"});
    ip_checked({"-n", m_name, "addr", "add", host_cidr, "dev", tap});
    ip_checked({"-n", m_name, "link", "set", tap, "up"});
}

std::vector<std::string> NetNamespace::command(const std::vector<std::string>& argv) const {
    std::vector<std::string> out{ip_binary(), "netns", "exec", m_name};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
}

ProcessResult NetNamespace::shell(const std::string& script, const ProcessOptions& options) const {
    return run_process(command({"/bin/sh", "-c", script}), options);
}

BackgroundProcess::BackgroundProcess(std::vector<std::string> argv, std::chrono::seconds timeout)
    : m_thread([this, argv = std::move(argv), timeout] {
          ProcessOptions options;
          options.timeout = timeout;
          options.kill_when = [this](const std::string&) { return m_stop.load(); };
          m_result = run_process(argv, options);
          m_done = true;
      }) {}

BackgroundProcess::~BackgroundProcess() {
    (void)finish(std::chrono::seconds(0));
}

ProcessResult BackgroundProcess::finish(std::chrono::seconds grace) {
    if (m_thread.joinable()) {
        const auto deadline = std::chrono::steady_clock::now() + grace;
        while (!m_done && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        m_stop = true;
        m_thread.join();
    }
    return m_result;
}

HostAction::HostAction(std::string text, std::function<void(std::stop_token)> action)
    : m_text(std::move(text)), m_action(std::move(action)) {}

std::function<void(const std::string&)> HostAction::watcher() {
    return [this](const std::string& out) {
        if (!m_started && out.find(m_text) != std::string::npos) {
            m_started = true;
            m_thread = std::jthread(m_action);
        }
    };
}

bool HostAction::stop() {
    if (m_thread.joinable()) {
        m_thread.request_stop();
        m_thread.join();
    }
    return m_started;
}

std::function<bool(const std::string&)> stop_with(std::stop_token token) {
    return [token = std::move(token)](const std::string&) { return token.stop_requested(); };
}

}  // namespace keel::test
