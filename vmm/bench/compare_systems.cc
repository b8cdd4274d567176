#include <filesystem>

#include "bench/compare_setup.h"

namespace keel::bench {

bool is_vm_system(const std::string& system) {
    return system == kKeel || system == kQemuMicrovm;
}

bool is_known_system(const std::string& system) {
    return is_vm_system(system) || system == kCrun || system == kRunc;
}

std::string default_vm_cmdline(const std::string& payload) {
    // What keel's and Firecracker's docs boot with: the serial console, reboot
    // without the BIOS, no kernel messages on the console (each one is a slow
    // UART write that would be billed to the boot), and the payload as init.
    return "console=ttyS0 reboot=k panic=-1 quiet rdinit=" + payload;
}

std::vector<std::string> system_command(const std::string& system, const CompareSetup& setup, const RunPaths& paths) {
    const std::string cmdline = setup.cmdline.empty() ? default_vm_cmdline(setup.payload) : setup.cmdline;
    const std::string memory_mib = std::to_string(setup.memory_bytes >> 20);
    if (system == kKeel) {
        std::vector<std::string> args{
            setup.keel_binary,           "run",      "--kernel",       setup.kernel, "--initrd", setup.initrd, "--cpus",
            std::to_string(setup.vcpus), "--memory", memory_mib + "M", "--cmdline",  cmdline};
        if (!paths.keel_stats_json.empty()) args.insert(args.end(), {"--stats-json", paths.keel_stats_json});
        return args;
    }
    if (system == kQemuMicrovm) {
        // microvm's documented lean setup (QEMU's docs/system/i386/microvm.rst):
        // no option ROMs, PIT, PIC or RTC; the guest uses the LAPIC timer and
        // kvmclock. The ISA serial port stays: it is the console the payload
        // reports on, as under keel. ACPI stays on: it is how the guest powers
        // the machine off (keel offers the same).
        std::vector<std::string> args{"qemu-system-x86_64",
                                      "-M",
                                      "microvm,acpi=on,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=on",
                                      "-enable-kvm",
                                      "-cpu",
                                      "host",
                                      "-smp",
                                      std::to_string(setup.vcpus),
                                      "-m",
                                      memory_mib + "M",
                                      "-nodefaults",
                                      "-no-user-config",
                                      "-nographic",
                                      "-no-reboot",
                                      "-serial",
                                      "stdio",
                                      "-kernel",
                                      setup.kernel,
                                      "-initrd",
                                      setup.initrd,
                                      "-append",
                                      cmdline};
        // Debian's QEMU finds its firmware blobs here even when started from
        // a chroot or a relocated prefix (the sandbox).
        std::error_code error;
        if (std::filesystem::is_directory("/usr/share/qemu", error)) args.insert(args.end(), {"-L", "/usr/share/qemu"});
        return args;
    }
    // crun and runc take the same command line.
    return {system, "run", "--bundle", paths.bundle, paths.container_id};
}

StraceWindow payload_window(const std::string& system, const CompareSetup& setup) {
    if (is_vm_system(system)) return {StraceWindow::Kind::FromFirstMatch, "ioctl", "KVM_RUN"};
    return {StraceWindow::Kind::MatchingProcessTree, "execve", "\"" + setup.payload + "\""};
}

}  // namespace keel::bench
