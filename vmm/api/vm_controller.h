#pragma once

// The VMM thread's side of the API: answers each ApiAction against the VM's
// state. Before InstanceStart, requests describe the VM (VmResources);
// InstanceStart builds the Machine from them; after it, runtime actions
// (pause, resume, Ctrl-Alt-Del) act on the running Machine. Firecracker's
// state rules and fault messages throughout.

#include <chrono>
#include <functional>
#include <memory>

#include "api/api_request.h"
#include "api/metrics.h"
#include "api/vm_resources.h"
#include "core/machine.h"

namespace keel::api {

struct VmControllerOptions {
    // What the command line adds to any VM: transport, --stats, --stats-json.
    VmConfig command_line{};
    // PUT /logger: points keel's log where the request says. Throws
    // keel::Error with a message for the client.
    std::function<void(const LoggerConfig&)> configure_logger{};
    // How long PATCH /vm Paused waits for every vCPU to leave KVM_RUN.
    std::chrono::milliseconds pause_timeout{10'000};
};

class VmController {
public:
    // Opens the metrics file when `resources` has one (throws keel::Error).
    VmController(VmResources resources, VmControllerOptions options);

    // Never throws: every failure is the response.
    [[nodiscard]] ApiResponse handle(const ApiAction& action);

    // Builds the Machine from the resources (what InstanceStart does). Throws
    // keel::Error or ResourceError; for a VM given on the command line.
    void start();

    // Appends a line to the metrics file, if one is configured (the periodic
    // flush, and the last one when the VM stops).
    void flush_metrics();

    [[nodiscard]] VmState state() const { return m_state; }
    [[nodiscard]] Machine* machine() { return m_machine.get(); }
    // The VmConfig the Machine was built from (for keel's exit report).
    [[nodiscard]] const VmConfig& vm_config() const { return m_vm_config; }

private:
    [[nodiscard]] ApiResponse configure(const ApiAction& action);
    [[nodiscard]] ApiResponse run_action(const ApiAction& action);
    [[nodiscard]] ApiResponse instance_info() const;
    [[nodiscard]] ApiResponse answer(const ApiAction& action);
    [[nodiscard]] MetricsSample metrics_sample();
    void open_metrics(const MetricsConfig& config);

    VmResources m_resources;
    VmControllerOptions m_options;
    VmState m_state = VmState::NotStarted;
    VmConfig m_vm_config{};
    std::unique_ptr<Machine> m_machine;
    RequestCounts m_requests;
    std::optional<MetricsFile> m_metrics_file;
};

}  // namespace keel::api
