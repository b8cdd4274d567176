#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "bus/bus.h"
#include "core/event_loop.h"
#include "core/live_metrics.h"
#include "core/pause_gate.h"
#include "core/stop_controller.h"
#include "core/vcpu_runner.h"
#include "core/virtio_placement.h"
#include "core/vm_config.h"
#include "core/vm_stats.h"
#include "kvm/kvm.h"
#include "kvm/vm.h"
#include "loader/loaded_kernel.h"
#include "memory/guest_memory.h"
#include "virtio/virtio_device.h"

namespace keel {

class Serial;
class I8042;
class MsiRouter;
namespace pci {
class PciRoot;
}  // namespace pci
namespace virtio {
class VirtioMmioTransport;
class VirtioPciTransport;
}  // namespace virtio
namespace x86::acpi {
struct AcpiConfig;
}  // namespace x86::acpi

// One VM: guest memory, the KVM VM, devices on two buses, one thread per
// vCPU. Built by create() as a list of small named steps (machine_builder.cc);
// run() drives it until the guest stops.
class Machine {
public:
    // Throws keel::Error with a one-line message when anything about the
    // config, the images or the host is wrong. Images are loaded before KVM
    // is touched, so bad input fails fast on any host.
    static std::unique_ptr<Machine> create(const VmConfig& config);
    ~Machine();
    Machine(const Machine&) = delete;
    Machine& operator=(const Machine&) = delete;

    // Runs until the guest powers off, reboots or keel is told to stop.
    // Returns keel's exit status.
    int run();

    [[nodiscard]] VmStats& stats() { return m_stats; }

    // From the event-loop thread while run() runs (an add_control_fd
    // handler). pause() returns once every vCPU is parked outside KVM_RUN and
    // device I/O has stopped (false if a vCPU did not park within `timeout`:
    // the pause is then undone). Both are idempotent.
    [[nodiscard]] bool pause(std::chrono::milliseconds timeout);
    void resume();
    [[nodiscard]] bool paused() const { return m_pause.pause_requested(); }
    // PATCH /drives/{id}: the disk named `drive_id` serves `path` from now on
    // (block::VirtioBlock::change_backing_file). Throws keel::Error when there
    // is no such disk, the VM is paused, or the file cannot be opened.
    void change_disk(const std::string& drive_id, const std::string& path);
    // Ctrl-Alt-Del on the i8042 keyboard; false while the guest's keyboard
    // cannot take it (disabled, or earlier keys not read yet).
    [[nodiscard]] bool send_ctrl_alt_del();

    // Counts, boot times and memory so far (main thread, while run() runs or
    // after it). Reads /proc/self/smaps for the memory.
    [[nodiscard]] LiveMetrics live_metrics();

    // A handler run() serves along with the VM's own, also while paused (the
    // API's request queue). Before run(); remove after it.
    void add_control_fd(int fd, std::function<void()> handler);
    void remove_control_fd(int fd);

private:
    explicit Machine(const VmConfig& config);

    // Build steps, in order.
    void create_virtio_devices();
    void create_guest_memory();
    void load_kernel_and_initrd();
    void write_platform_description();
    void open_kvm();
    void register_guest_memory();
    void create_legacy_devices();
    void attach_virtio_devices();
    void create_vcpus();

    void describe_virtio_devices(x86::acpi::AcpiConfig& acpi) const;
    void attach_mmio_transports();
    void attach_pci_transports();
    void collect_device_stats();

    void start_vcpu_threads();
    void kick_vcpus();
    void stop_vcpu_threads();
    void collect_stats();
    [[nodiscard]] MemoryBreakdown measure_own_memory() const;
    [[nodiscard]] int exit_status() const;


    VmConfig m_config;
    VmStats m_stats;
    StopController m_stop;
    EventLoop m_events;  // before the devices that subscribe to it
    std::optional<GuestMemory> m_memory;
    std::optional<LoadedKernel> m_kernel;
    std::optional<Kvm> m_kvm;
    std::optional<Vm> m_vm;
    Bus m_pio{BusKind::Pio};
    Bus m_mmio{BusKind::Mmio};
    std::unique_ptr<VmLifecycle> m_lifecycle;
    std::shared_ptr<Serial> m_serial;
    std::shared_ptr<I8042> m_i8042;
    // One per virtio device, in --disk order then the rng.
    struct VirtioEntry {
        std::shared_ptr<virtio::VirtioDevice> device;
        std::string type;       // for stats: "block", "entropy"
        MmioPlacement mmio;     // virtio-mmio only
        std::string transport;  // for stats: where it is attached
        std::function<std::vector<virtio::DeviceCounter>()> counters;  // the transport's, device's included
        std::function<std::vector<std::string>()> queue_states;
    };
    std::vector<VirtioEntry> m_virtio;
    std::string m_cmdline_extra;  // virtio_mmio.device= parameters, when needed
    std::shared_ptr<pci::PciRoot> m_pci_root;
    std::shared_ptr<MsiRouter> m_msi_router;
    // The transports (each owns its device's MSI-X vectors, for PCI).
    std::vector<std::shared_ptr<virtio::VirtioMmioTransport>> m_mmio_transports;
    std::vector<std::shared_ptr<virtio::VirtioPciTransport>> m_pci_transports;
    PauseGate m_pause{m_config.vcpus};
    std::vector<std::unique_ptr<VcpuRunner>> m_runners;
    std::vector<std::thread> m_threads;
    std::atomic<uint64_t> m_first_run_ns{0};
};

}  // namespace keel
