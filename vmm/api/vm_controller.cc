#include "api/vm_controller.h"

#include <spdlog/spdlog.h>

#include "api/json_body.h"
#include "common/error.h"
#include "keel/version.h"

namespace keel::api {

namespace {

// The Firecracker release whose API keel answers (docs/api.md); GET /version
// reports it where Firecracker clients look, and keel's own version beside it.
constexpr const char* kFirecrackerApiVersion = "1.16.1";

}  // namespace

VmController::VmController(VmResources resources, VmControllerOptions options)
    : m_resources(std::move(resources)), m_options(std::move(options)) {
    if (const auto& metrics = m_resources.metrics()) open_metrics(*metrics);
}

void VmController::open_metrics(const MetricsConfig& config) { m_metrics_file.emplace(config.metrics_path); }

MetricsSample VmController::metrics_sample() {
    MetricsSample sample{m_requests, {}, m_machine != nullptr};
    if (m_machine) sample.vm = m_machine->live_metrics();
    return sample;
}

void VmController::flush_metrics() {
    if (m_metrics_file && !m_metrics_file->write(metrics_sample(), utc_now_ms())) {
        spdlog::warn("metrics: a line could not be written to the metrics file (a full pipe?); it was dropped");
    }
}

ApiResponse VmController::handle(const ApiAction& action) {
    spdlog::debug("api: {} while {}", action_name(action), state_name(m_state));
    auto response = answer(action);
    count_request(m_requests, action, response);
    return response;
}

ApiResponse VmController::answer(const ApiAction& action) {
    if (auto refused = check_vm_state(action, m_state)) return *refused;
    try {
        return m_state == VmState::NotStarted ? configure(action) : run_action(action);
    } catch (const ResourceError& e) {
        return fault(e.what());
    } catch (const BodyError& e) {
        return fault(std::string("An error occurred when deserializing the json body of a request: ") + e.what() + ".");
    } catch (const Error& e) {
        return fault(e.what());
    } catch (const std::exception& e) {
        return fault(std::string("internal error: ") + e.what(), 500);
    }
}

void VmController::start() {
    VmConfig config = m_resources.to_vm_config();
    config.transport = m_options.command_line.transport;
    config.print_stats = m_options.command_line.print_stats;
    config.stats_json_path = m_options.command_line.stats_json_path;
    config.seccomp = m_options.command_line.seccomp;
    m_machine = Machine::create(config);
    m_vm_config = std::move(config);
    m_state = VmState::Running;
}

ApiResponse VmController::instance_info() const {
    return json_response({{"id", "anonymous-instance"},
                          {"state", state_name(m_state)},
                          {"vmm_version", kVersion},
                          {"app_name", "keel"}});
}

// Reads, and everything Firecracker allows before InstanceStart.
ApiResponse VmController::configure(const ApiAction& action) {
    return std::visit(
        [&](const auto& a) -> ApiResponse {
            using A = std::decay_t<decltype(a)>;
            if constexpr (std::is_same_v<A, PutBootSource>) {
                m_resources.set_boot_source(a.source);
            } else if constexpr (std::is_same_v<A, PutDrive>) {
                m_resources.put_drive(a.drive);
            } else if constexpr (std::is_same_v<A, PutNetworkInterface>) {
                m_resources.put_network_interface(a.nic);
            } else if constexpr (std::is_same_v<A, PutMachineConfig>) {
                m_resources.set_machine_config(a.config);
            } else if constexpr (std::is_same_v<A, PatchMachineConfig>) {
                m_resources.set_machine_config(patch_machine_config(m_resources.machine_config(), a.changes));
            } else if constexpr (std::is_same_v<A, PutLogger>) {
                if (m_options.configure_logger) m_options.configure_logger(a.logger);
                m_resources.set_logger(a.logger);
            } else if constexpr (std::is_same_v<A, PutMetrics>) {
                // A second PUT gets Firecracker's "Reinitialization ... not allowed".
                if (m_resources.metrics()) m_resources.set_metrics(a.metrics);
                open_metrics(a.metrics);
                m_resources.set_metrics(a.metrics);
            } else if constexpr (std::is_same_v<A, PutEntropy>) {
                m_resources.set_entropy();
            } else if constexpr (std::is_same_v<A, InstanceStart>) {
                try {
                    start();
                } catch (const ResourceError&) {
                    throw;
                } catch (const Error& e) {
                    return fault(std::string("Start microvm error: ") + e.what());
                }
                spdlog::info("api: the microVM is starting");
            } else {
                return run_action(action);
            }
            return ApiResponse{};
        },
        action);
}

// Reads, and everything Firecracker allows once the VM runs.
ApiResponse VmController::run_action(const ApiAction& action) {
    return std::visit(
        [&](const auto& a) -> ApiResponse {
            using A = std::decay_t<decltype(a)>;
            if constexpr (std::is_same_v<A, GetInstanceInfo>) {
                return instance_info();
            } else if constexpr (std::is_same_v<A, GetVersion>) {
                return json_response({{"firecracker_version", kFirecrackerApiVersion}, {"keel_version", kVersion}});
            } else if constexpr (std::is_same_v<A, GetMachineConfig>) {
                return json_response(to_json(m_resources.machine_config()));
            } else if constexpr (std::is_same_v<A, GetVmConfig>) {
                return json_response(m_resources.to_json());
            } else if constexpr (std::is_same_v<A, GetMetrics>) {
                return ApiResponse{200, metrics_text(metrics_sample(), a.openmetrics), metrics_content_type(a.openmetrics)};
            } else if constexpr (std::is_same_v<A, PauseVm>) {
                if (!m_machine->pause(m_options.pause_timeout)) {
                    return fault("Internal Vmm error: a vCPU did not stop within " +
                                 std::to_string(m_options.pause_timeout.count()) + " ms; the microVM keeps running.");
                }
                m_state = VmState::Paused;
            } else if constexpr (std::is_same_v<A, ResumeVm>) {
                m_machine->resume();
                m_state = VmState::Running;
            } else if constexpr (std::is_same_v<A, SendCtrlAltDel>) {
                if (!m_machine->send_ctrl_alt_del()) {
                    return fault(
                        "Internal Vmm error: the guest's i8042 keyboard is disabled or has not read earlier keys; "
                        "Ctrl-Alt-Del was not sent.");
                }
            } else if constexpr (std::is_same_v<A, FlushMetrics>) {
                if (!m_metrics_file) {
                    return fault("Metrics error: the metrics system is not initialized (PUT /metrics configures it).");
                }
                if (!m_metrics_file->write(metrics_sample(), utc_now_ms())) {
                    return fault("Metrics error: the metrics line could not be written (a full pipe?).");
                }
            } else if constexpr (std::is_same_v<A, PatchDrive>) {
                if (!a.path_on_host) return ApiResponse{};  // nothing keel can change besides the path
                try {
                    m_machine->change_disk(a.drive_id, *a.path_on_host);
                } catch (const Error& e) {
                    return fault(std::string("Drive config error: ") + e.what());
                }
                m_resources.update_drive_path(a.drive_id, *a.path_on_host);
            } else if constexpr (std::is_same_v<A, PatchNetworkInterface>) {
                return fault("Network interface error: keel has no rate limiters to update.");
            } else {
                return fault("internal error: " + std::string(action_name(action)) + " reached the running VM", 500);
            }
            return ApiResponse{};
        },
        action);
}

}  // namespace keel::api
