#pragma once

// The host side of network tests: a network namespace of the test's own with
// TAP interfaces in it, and host commands that run while a guest boots.

#include <atomic>
#include <chrono>
#include <functional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "process.h"

namespace keel::test {

// A fresh network namespace (keel-net-<pid>-<n>), so that tests neither see
// nor disturb the host's interfaces, routes and ports. Needs root
// (CAP_SYS_ADMIN + CAP_NET_ADMIN). The destructor kills whatever still runs
// in it and deletes it, TAPs included, also when the test failed.
class NetNamespace {
public:
    NetNamespace();  // throws std::runtime_error with ip's message
    ~NetNamespace();
    NetNamespace(const NetNamespace&) = delete;
    NetNamespace& operator=(const NetNamespace&) = delete;

    [[nodiscard]] const std::string& name() const { return m_name; }

    // Creates TAP `tap` in the namespace (multi-queue, so keel can attach one
    // queue per vCPU), gives the host's end the address `host_cidr`
    // (e.g. "169.254.100.1/24") and brings it up.
    void add_tap(const std::string& tap, const std::string& host_cidr) const;

    // argv that runs `argv` inside the namespace (PATH is searched).
    [[nodiscard]] std::vector<std::string> command(const std::vector<std::string>& argv) const;
    // Runs a /bin/sh script inside the namespace.
    [[nodiscard]] ProcessResult shell(const std::string& script, const ProcessOptions& options = {}) const;

private:
    std::string m_name;
};

// Whether network namespaces can be made here (root); tests that need them
// say why they did not run otherwise.
[[nodiscard]] bool can_create_net_namespaces();

// A host command running on a thread of its own while the test goes on (a
// server waiting for the guest to connect).
class BackgroundProcess {
public:
    BackgroundProcess(std::vector<std::string> argv, std::chrono::seconds timeout);
    ~BackgroundProcess();
    BackgroundProcess(const BackgroundProcess&) = delete;
    BackgroundProcess& operator=(const BackgroundProcess&) = delete;

    // Waits up to `grace` for the command to end by itself, then kills it
    // (SIGKILL); returns what it did. Later calls return the same.
    ProcessResult finish(std::chrono::seconds grace);

private:
    std::atomic<bool> m_stop{false};
    std::atomic<bool> m_done{false};
    ProcessResult m_result;
    std::thread m_thread;
};

// Host-side work that starts, on a thread of its own, the first time the
// guest's console shows `text`: install watcher() as ProcessOptions::watch.
// The action is handed a stop token that fires when the test is done with it
// (stop(), or the destructor), and must then return promptly: pass
// stop_with(token) as kill_when to the processes it runs.
class HostAction {
public:
    HostAction(std::string text, std::function<void(std::stop_token)> action);
    ~HostAction() { stop(); }
    HostAction(const HostAction&) = delete;
    HostAction& operator=(const HostAction&) = delete;

    [[nodiscard]] std::function<void(const std::string&)> watcher();
    // Stops the action if it still runs and waits for it. Returns whether it
    // ever started.
    bool stop();

private:
    std::string m_text;
    std::function<void(std::stop_token)> m_action;
    bool m_started = false;
    std::jthread m_thread;
};

// A kill_when that kills the process once `token` is stopped.
[[nodiscard]] std::function<bool(const std::string&)> stop_with(std::stop_token token);

}  // namespace keel::test
