#pragma once

// keel with --api-sock: the API socket's server thread, the mailbox that
// carries its requests to this (the VMM) thread, and the VmController that
// answers them, before the VM exists (waiting for InstanceStart) and while it
// runs (served from the Machine's event loop, also while it is paused).

#include <chrono>
#include <optional>
#include <string>

#include "api/api_mailbox.h"
#include "api/api_server.h"
#include "api/vm_controller.h"

namespace keel::api {

class ApiSession {
public:
    // Listens on `socket_path` at once (throws keel::Error naming it); an
    // empty path means no socket (a config file's VM with a metrics file).
    ApiSession(const std::string& socket_path, VmResources resources, VmControllerOptions options);
    ~ApiSession();
    ApiSession(const ApiSession&) = delete;
    ApiSession& operator=(const ApiSession&) = delete;

    // A VM given on the command line: built now; errors throw as without the API.
    void start_now() { m_controller.start(); }

    // Serves requests until InstanceStart built the VM (true), or until
    // SIGINT, SIGTERM or SIGHUP (false: exit_status_after_signal()).
    [[nodiscard]] bool wait_for_instance_start();
    [[nodiscard]] int exit_status_after_signal() const { return m_signal_exit_status; }

    // Runs the VM with the API served and the metrics file written every
    // `metrics_period` and once more at the end; keel's exit status.
    [[nodiscard]] int run(std::chrono::seconds metrics_period = std::chrono::seconds(60));

    [[nodiscard]] Machine& machine() { return *m_controller.machine(); }
    [[nodiscard]] const VmConfig& vm_config() const { return m_controller.vm_config(); }

private:
    void answer_requests();

    security::SeccompMode m_seccomp;  // before m_controller, which takes the options
    VmController m_controller;
    ApiMailbox m_mailbox;
    std::optional<ApiServer> m_server;
    int m_signal_exit_status = 0;
};

}  // namespace keel::api
