// The build steps that give a Machine its virtio devices: one recipe for
// every device, whichever transport carries it (design notes §4,
// "Registration is one recipe in one place").
#include <spdlog/spdlog.h>

#include "arch/x86_64/acpi/acpi_builder.h"
#include "arch/x86_64/layout.h"
#include "common/error.h"
#include "common/units.h"
#include "core/irqfd_line.h"
#include "core/machine.h"
#include "core/msi_routes.h"
#include "core/virtio_placement.h"
#include "pci/pci_root.h"
#include "virtio/block/block_device.h"
#include "virtio/mmio_transport.h"
#include "virtio/net/net_device.h"
#include "virtio/net/tap.h"
#include "virtio/pci/virtio_pci_transport.h"
#include "virtio/rng_device.h"

namespace keel {

namespace {

// Queue pairs per NIC: one per vCPU up to this. Beyond 8 the event loop (one
// thread) is the limit, not the guest's queues.
constexpr size_t kMaxNetQueuePairs = 8;

void register_ioevents(const Vm& vm, const std::vector<virtio::IoEventSpec>& specs) {
    for (const auto& spec : specs) {
        vm.register_ioeventfd(spec.fd, Vm::IoSpace::Mmio, spec.address.value, spec.length, spec.datamatch);
    }
}

}  // namespace

// Opens every disk image (and takes its lock) before anything else is
// built, so a missing or busy image fails fast, on any host.
void Machine::create_virtio_devices() {
    const uint32_t queues = std::min<uint32_t>(m_config.vcpus, block::kMaxBlockQueues);
    for (size_t i = 0; i < m_config.disks.size(); ++i) {
        auto disk = m_config.disks[i];
        if (disk.id.empty()) disk.id = "blk" + std::to_string(i);
        VirtioEntry entry;
        entry.device = std::make_shared<block::VirtioBlock>(disk, queues);
        entry.type = "block";
        m_virtio.push_back(std::move(entry));
    }
    // One queue pair per vCPU, as for disks: each vCPU's transmit path then
    // has its own queue in the guest. The TAP decides in the end (a
    // single-queue TAP gets one pair).
    const size_t queue_pairs = std::min<size_t>(m_config.vcpus, kMaxNetQueuePairs);
    for (size_t i = 0; i < m_config.nets.size(); ++i) {
        const auto& nic = m_config.nets[i];
        auto tap = nic.uses_fd() ? net::Tap::adopt(nic.tap_fd) : net::Tap::open(nic.tap_name, queue_pairs);
        virtio::NetDeviceConfig device;
        device.name = nic.id.empty() ? "net" + std::to_string(i) : nic.id;
        device.mac = nic.mac.value_or(net::default_mac(device.name, tap->interface_name()));
        device.mtu = static_cast<uint16_t>(std::min<unsigned>(tap->mtu(), UINT16_MAX));
        spdlog::debug("{}: TAP {} ({} queue pair{}), MAC {}", device.name, tap->interface_name(),
                      tap->queue_pairs(), tap->queue_pairs() == 1 ? "" : "s", net::format_mac(device.mac));
        VirtioEntry entry;
        entry.device = std::make_shared<virtio::VirtioNet>(std::move(device), std::move(tap));
        entry.type = "net";
        m_virtio.push_back(std::move(entry));
    }
    if (m_config.rng) {
        VirtioEntry entry;
        entry.device = std::make_shared<virtio::RngDevice>();
        entry.type = "entropy";
        m_virtio.push_back(std::move(entry));
    }

    if (m_config.transport == VirtioTransportKind::Mmio) {
        const auto placements = place_mmio_devices(m_virtio.size());
        const bool on_cmdline = mmio_needs_cmdline_devices(m_config.cmdline);
        for (size_t i = 0; i < m_virtio.size(); ++i) {
            m_virtio[i].mmio = placements[i];
            m_virtio[i].transport = "mmio " + format_hex(placements[i].base.value);
            if (on_cmdline) {
                m_cmdline_extra += " " + virtio::virtio_mmio_cmdline_parameter(placements[i].base, placements[i].size,
                                                                             placements[i].gsi);
            }
        }
    }
}

void Machine::describe_virtio_devices(x86::acpi::AcpiConfig& acpi) const {
    if (m_config.transport == VirtioTransportKind::Mmio) {
        for (size_t i = 0; i < m_virtio.size(); ++i) {
            const auto& slot = m_virtio[i].mmio;
            acpi.devices.push_back(
                x86::acpi::virtio_mmio_device(static_cast<uint32_t>(i), slot.base, slot.size, slot.gsi));
        }
    } else {
        acpi.pci = x86::acpi::PciHostBridgeConfig{};
    }
}

void Machine::attach_virtio_devices() {
    if (m_config.transport == VirtioTransportKind::Mmio) {
        attach_mmio_transports();
    } else {
        attach_pci_transports();
    }
    m_stats.phase("devices ready");
}

void Machine::attach_mmio_transports() {
    // ACPI describes the lines as level-triggered (see virtio_mmio_device()).
    // Devices on the command line get the IOAPIC's ISA default, an edge, and
    // an edge there is right: a level line's resample at an edge handler's
    // early EOI would interrupt the guest twice for every notification.
    const bool level_lines = !mmio_needs_cmdline_devices(m_config.cmdline);
    for (auto& entry : m_virtio) {
        const auto& slot = entry.mmio;
        std::shared_ptr<InterruptLine> irq;
        std::shared_ptr<ResampledIrqfdLine> level_line;
        if (level_lines) {
            level_line = std::make_shared<ResampledIrqfdLine>(*m_vm, slot.gsi, m_events);
            irq = level_line;
        } else {
            irq = std::make_shared<IrqfdLine>(*m_vm, slot.gsi);
        }
        auto transport = std::make_shared<virtio::VirtioMmioTransport>(entry.device, *m_memory, m_events, irq,
                                                                       virtio::MmioSlot{slot.base, slot.gsi});
        m_mmio.insert(transport, slot.base.value, slot.size, std::string(entry.device->name()));
        register_ioevents(*m_vm, transport->ioevents());
        entry.counters = [transport, level_line] {
            auto counters = transport->counters();
            // Interrupts the guest's EOI found still owed (a cause raised after its handler read
            // InterruptStatus): each is one more interrupt, none lost.
            if (level_line) counters.emplace_back("interrupts_reraised_at_eoi", level_line->reasserted());
            return counters;
        };
        entry.queue_states = [transport] { return transport->queue_states(); };
        m_mmio_transports.push_back(transport);
    }
}

void Machine::attach_pci_transports() {
    // The host bridge and config access exist even without devices: the
    // guest's PCI scan then finds a bus with a bridge, as on real hardware,
    // instead of 1,000 unanswered probes.
    m_pci_root = std::make_shared<pci::PciRoot>();
    m_msi_router = MsiRouter::create(*m_vm, static_cast<uint32_t>(m_kvm->check_extension(KVM_CAP_IRQ_ROUTING)));
    for (auto& entry : m_virtio) {
        auto vectors = m_msi_router->create_vectors(virtio::VirtioPciTransport::msix_vector_count(*entry.device));
        auto transport = std::make_shared<virtio::VirtioPciTransport>(entry.device, *m_memory, m_events, vectors,
                                                                      std::string(entry.device->name()));
        const uint8_t slot = m_pci_root->add_device(transport);
        char where[16];
        std::snprintf(where, sizeof where, "pci 00:%02x.0", slot);
        entry.transport = where;
        entry.counters = [transport] { return transport->counters(); };
        entry.queue_states = [transport] { return transport->queue_states(); };
        m_pci_transports.push_back(transport);
    }
    m_pci_root->assign_bars(m_mmio, x86::kPciMmioWindowStart.value, x86::kPciMmioWindowSize);
    for (const auto& transport : m_pci_transports) register_ioevents(*m_vm, transport->ioevents());
    m_pio.insert(std::make_shared<pci::PciConfigIoPort>(m_pci_root), x86::kPciConfigAddressPort,
                 x86::kPciConfigPortCount, "pci-config");
    m_mmio.insert(std::make_shared<pci::PciEcam>(m_pci_root), x86::kPciEcamStart.value, x86::kPciEcamUsedSize,
                  "pci-ecam");
}

void Machine::change_disk(const std::string& drive_id, const std::string& path) {
    // Finishing the old file's I/O completes guest requests: not while paused.
    if (paused()) throw Error("the microVM is paused; resume it before changing a drive");
    for (auto& entry : m_virtio) {
        if (entry.type != "block" || entry.device->name() != drive_id) continue;
        auto disk = std::dynamic_pointer_cast<block::VirtioBlock>(entry.device);
        if (!disk) break;
        disk->change_backing_file(path);
        return;
    }
    throw Error("no drive '" + drive_id + "'");
}

LiveMetrics Machine::live_metrics() {
    LiveMetrics metrics;
    metrics.paused = paused();
    uint64_t exits = 0, io_in = 0, io_out = 0, mmio_read = 0, mmio_write = 0, failures = 0;
    for (const auto& runner : m_runners) {
        const auto& live = runner->live_counts();
        const auto get = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
        exits += get(live.exits);
        io_in += get(live.io_in);
        io_out += get(live.io_out);
        mmio_read += get(live.mmio_read);
        mmio_write += get(live.mmio_write);
        failures += get(live.failures);
    }
    metrics.vcpu = {{"exit_io_in", io_in},         {"exit_io_out", io_out}, {"exit_mmio_read", mmio_read},
                    {"exit_mmio_write", mmio_write}, {"failures", failures},  {"exits", exits}};
    for (const auto& entry : m_virtio) {
        metrics.devices.push_back(LiveDeviceCounts{
            entry.type, std::string(entry.device->name()),
            entry.counters ? entry.counters() : entry.device->counters()});
    }
    metrics.boot_ms = m_stats.boot_times_ms();
    metrics.memory = measure_own_memory();
    return metrics;
}

void Machine::collect_device_stats() {
    for (const auto& entry : m_virtio) {
        DeviceStats stats;
        stats.name = std::string(entry.device->name());
        stats.type = entry.type;
        stats.transport = entry.transport;
        stats.counters = entry.counters ? entry.counters() : entry.device->counters();
        if (entry.queue_states) stats.queues = entry.queue_states();
        m_stats.devices.push_back(std::move(stats));
    }
}

}  // namespace keel
