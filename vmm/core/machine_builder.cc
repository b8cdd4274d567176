// The steps that build a Machine, in the order create() runs them.
#include <spdlog/spdlog.h>

#include "arch/x86_64/acpi/acpi_builder.h"
#include "arch/x86_64/boot_cpu_state.h"
#include "arch/x86_64/boot_params.h"
#include "arch/x86_64/cpuid.h"
#include "arch/x86_64/e820.h"
#include "arch/x86_64/layout.h"
#include "arch/x86_64/mptable.h"
#include "arch/x86_64/msrs.h"
#include "common/error.h"
#include "core/irqfd_line.h"
#include "core/machine.h"
#include "legacy/acpi_pm.h"
#include "legacy/boot_timer.h"
#include "legacy/i8042.h"
#include "legacy/serial.h"
#include "loader/initrd.h"
#include "loader/kernel_loader.h"

namespace keel {

namespace {

std::vector<uint32_t> apic_ids(uint32_t vcpus) {
    std::vector<uint32_t> ids(vcpus);
    for (uint32_t i = 0; i < vcpus; ++i) ids[i] = x86::apic_id_for(i);
    return ids;
}

// Devices end the VM through this; the first request wins.
class StopOnExitRequest final : public VmLifecycle {
public:
    explicit StopOnExitRequest(StopController& stop) : m_stop(stop) {}
    void request_exit(VmExitRequest request) override {
        if (request == VmExitRequest::PowerOff) {
            m_stop.stop(StopReason::PowerOff, "");
        } else {
            m_stop.stop(StopReason::Reboot, "");
        }
    }

private:
    StopController& m_stop;
};

}  // namespace

std::unique_ptr<Machine> Machine::create(const VmConfig& config) {
    validate_config(config, host_memory_bytes());
    std::unique_ptr<Machine> m(new Machine(config));
    m->create_virtio_devices();
    m->create_guest_memory();
    m->load_kernel_and_initrd();
    m->write_platform_description();
    m->open_kvm();
    m->register_guest_memory();
    m->create_legacy_devices();
    m->attach_virtio_devices();
    m->create_vcpus();
    return m;
}

void Machine::create_guest_memory() {
    m_memory = GuestMemory::create(x86::guest_ram_regions(m_config.memory_bytes), m_config.page_backing);
    m_stats.guest_memory_bytes = m_config.memory_bytes;
    m_stats.guest_memory_backing = page_backing_name(m_config.page_backing);
    m_stats.phase("memory ready");
}

void Machine::load_kernel_and_initrd() {
    m_kernel = load_kernel(m_config.kernel_path, *m_memory);
    x86::BootInfo info;
    info.cmdline = m_config.cmdline + m_cmdline_extra;
    if (!m_config.initrd_path.empty()) info.initrd = load_initrd(m_config.initrd_path, *m_memory, *m_kernel);
    info.memory_map = x86::build_e820_map(*m_memory);
    info.acpi_rsdp = x86::kBiosAreaStart;
    x86::write_boot_info(*m_memory, *m_kernel, info);
    m_stats.phase("kernel loaded");
}

void Machine::write_platform_description() {
    const auto ids = apic_ids(m_config.vcpus);
    x86::acpi::AcpiConfig acpi;
    acpi.apic_ids = ids;
    describe_virtio_devices(acpi);
    const auto layout = x86::acpi::write_acpi_tables(*m_memory, acpi);
    if (layout.rsdp != x86::kBiosAreaStart) throw Error("internal: the RSDP moved away from kBiosAreaStart");
    x86::write_mptable(*m_memory, ids);
    x86::write_boot_tables(*m_memory, m_kernel->protocol);
}

void Machine::open_kvm() {
    m_kvm = Kvm::open();
    if (m_config.vcpus > m_kvm->max_vcpus()) {
        throw Error("--cpus " + std::to_string(m_config.vcpus) + ": this host's KVM allows at most " +
                    std::to_string(m_kvm->max_vcpus()));
    }
    m_vm = m_kvm->create_vm();
    m_vm->set_tss_address(x86::kKvmTss.value);
    m_vm->set_identity_map_address(x86::kKvmIdentityMap.value);
    m_vm->create_irqchip();
    m_vm->create_pit();
    m_stats.phase("KVM ready");
}

void Machine::register_guest_memory() {
    uint32_t slot = 0;
    for (const auto& region : m_memory->regions()) {
        m_vm->set_user_memory_region(slot++, region.start.value, region.size, region.host);
    }
}

void Machine::create_legacy_devices() {
    m_lifecycle = std::make_unique<StopOnExitRequest>(m_stop);
    auto serial_irq = std::make_shared<IrqfdLine>(*m_vm, x86::kSerialCom1Irq);
    m_serial = std::make_shared<Serial>(serial_irq, [](std::span<const uint8_t> bytes) {
        // The console is stdout; a short write (a full pipe) is retried, a
        // closed one drops the output — the guest must not stall on it.
        size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t n = ::write(STDOUT_FILENO, bytes.data() + done, bytes.size() - done);
            if (n <= 0) {
                if (n < 0 && errno == EINTR) continue;
                return;
            }
            done += static_cast<size_t>(n);
        }
    });
    m_pio.insert(m_serial, x86::kSerialCom1Port, x86::kSerialPortCount, "serial");

    auto keyboard_irq = std::make_shared<IrqfdLine>(*m_vm, x86::kI8042KeyboardIrq);
    m_i8042 = std::make_shared<I8042>(keyboard_irq, *m_lifecycle);
    m_pio.insert(std::make_shared<I8042PortDevice>(m_i8042, I8042Port::Data), x86::kI8042DataPort, 1, "i8042");
    m_pio.insert(std::make_shared<I8042PortDevice>(m_i8042, I8042Port::Command), x86::kI8042CommandPort, 1,
                 "i8042");
    m_pio.insert(std::make_shared<AcpiPm>(*m_lifecycle), x86::kAcpiSleepControlPort, AcpiPm::kPortCount, "acpi-pm");

    const auto sink = [this](const BootMark& mark) {
        m_stats.guest_mark(boot_mark_source_name(mark.source), mark.code, mark.at_ns);
    };
    auto boot_timer = std::make_shared<BootTimerMmio>(sink);
    m_mmio.insert(boot_timer, x86::kBootTimerMmio.value, x86::kBootTimerMmioSize, "boot-timer");
    m_mmio.insert(boot_timer, x86::kBootTimerLegacyMmio.value, x86::kBootTimerMmioSize, "boot-timer");
    m_pio.insert(std::make_shared<PostCodePort>(sink), x86::kPostCodePort, 1, "post-code");
}

void Machine::create_vcpus() {
    const auto supported = m_kvm->supported_cpuid();
    const x86::CpuTopology topology{m_config.vcpus, 1};
    x86::CpuidHostCaps caps;
    caps.tsc_deadline_timer = m_kvm->check_extension(KVM_CAP_TSC_DEADLINE_TIMER) > 0;
    const auto msrs = x86::boot_msr_entries();
    for (uint32_t i = 0; i < m_config.vcpus; ++i) {
        Vcpu vcpu = m_vm->create_vcpu(i);
        vcpu.set_cpuid(x86::build_guest_cpuid(supported, topology, i, caps));
        vcpu.set_msrs(msrs);
        auto lapic = vcpu.get_lapic();
        x86::setup_lapic_lint(lapic);
        vcpu.set_lapic(lapic);
        if (x86::vcpu_role(i) == x86::VcpuRole::Bootstrap) {
            auto sregs = vcpu.get_sregs();
            x86::setup_boot_sregs(sregs, m_kernel->protocol);
            vcpu.set_sregs(sregs);
            vcpu.set_regs(x86::boot_regs(m_kernel->protocol, m_kernel->entry));
            vcpu.set_fpu(x86::boot_fpu());
        }
        // MP state stays KVM's default: vCPU 0 runnable, the others waiting for INIT/SIPI.
        m_runners.push_back(std::make_unique<VcpuRunner>(std::move(vcpu), m_pio, m_mmio, m_stop, m_pause,
                                                         m_first_run_ns, m_config.stats_requested()));
    }
    m_stats.vcpus = m_config.vcpus;
    m_stats.phase("vCPUs ready");
}

}  // namespace keel
