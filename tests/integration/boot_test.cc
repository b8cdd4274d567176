// Boots real Linux guests (needs /dev/kvm: scripts/test runs these inside
// scripts/kvm-sandbox where the host has none) and asserts on what the guest
// itself reports over its console.
#include <catch2/catch.hpp>

#include "guest_boot.h"

using namespace keel::test;

namespace {

Boot boot(const GuestImage& guest, const std::string& kernel, uint32_t cpus, const std::string& memory,
          const std::string& extra_cmdline = "", ProcessOptions options = {}) {
    BootRequest request;
    request.kernel = kernel;
    request.initrd = guest.initrd;
    request.cpus = cpus;
    request.memory = memory;
    request.cmdline_extra = extra_cmdline;
    request.options = std::move(options);
    return keel::test::boot(request);
}

void check_guest_sees(const Boot& b, uint32_t cpus, uint64_t memory_mib) {
    INFO("guest console:\n" << b.result.out);
    CHECK(marker(b.result.out, "cpus") == std::to_string(cpus));
    const auto mem = marker(b.result.out, "mem_total_kb");
    REQUIRE(mem.has_value());
    const uint64_t kib = std::stoull(*mem);
    // MemTotal excludes what the kernel reserved for itself: expect 80-100%.
    CHECK(kib <= memory_mib * 1024);
    CHECK(kib >= memory_mib * 1024 * 8 / 10);
}

void check_boot_timer_marked(const Boot& b) {
    INFO("stats: " << b.stats.dump());
    REQUIRE(b.stats.is_object());
    bool userspace_mark = false;
    for (const auto& mark : b.stats["guest_marks"]) {
        if (mark["source"] == "mmio" && mark["code"] == 123) userspace_mark = true;
    }
    CHECK(userspace_mark);
    CHECK(b.stats["exits"]["total"].get<uint64_t>() > 0);
    CHECK(b.stats["memory_kib"]["overhead"]["rss"].get<uint64_t>() > 0);
}

void boot_and_check(const GuestImage& guest, const std::string& kernel, uint32_t cpus, uint64_t memory_mib) {
    const auto b = boot(guest, kernel, cpus, std::to_string(memory_mib) + "M");
    require_clean_exit(b);
    check_guest_sees(b, cpus, memory_mib);
    check_boot_timer_marked(b);
    CHECK(b.stats["stop_reason"] == "poweroff");
}

}  // namespace

TEST_CASE("stock Debian kernel boots with 1 vCPU and 256 MiB", "[kvm]") {
    const auto guest = stock_guest();
    boot_and_check(guest, guest.kernel, 1, 256);
}

TEST_CASE("stock Debian kernel boots with 4 vCPUs and 2 GiB", "[kvm]") {
    const auto guest = stock_guest();
    boot_and_check(guest, guest.kernel, 4, 2048);
}

TEST_CASE("minimal kernel boots with 1 vCPU and 256 MiB", "[kvm]") {
    const auto guest = minimal_guest();
    if (guest.kernel.empty()) {
        WARN("minimal kernel not built (guest-images/build-minimal-kernel): not tested");
        return;
    }
    boot_and_check(guest, guest.kernel, 1, 256);
}

TEST_CASE("minimal kernel boots with 4 vCPUs and 2 GiB", "[kvm]") {
    const auto guest = minimal_guest();
    if (guest.kernel.empty()) {
        WARN("minimal kernel not built (guest-images/build-minimal-kernel): not tested");
        return;
    }
    boot_and_check(guest, guest.kernel, 4, 2048);
}

TEST_CASE("minimal kernel boots as an ELF vmlinux through its PVH entry", "[kvm]") {
    const auto guest = minimal_guest();
    if (guest.vmlinux.empty()) {
        WARN("minimal kernel not built (guest-images/build-minimal-kernel): not tested");
        return;
    }
    boot_and_check(guest, guest.vmlinux, 2, 512);
}

TEST_CASE("a guest reboot ends keel with exit status 0", "[kvm]") {
    const auto guest = stock_guest();
    const auto b = boot(guest, guest.kernel, 1, "256M", "keel.action=reboot");
    require_clean_exit(b);
    CHECK(b.stats["stop_reason"] == "reboot");
}

TEST_CASE("the serial console takes input: a guest shell runs commands", "[kvm]") {
    const auto guest = stock_guest();
    ProcessOptions options;
    // Type only once the shell prompts: the tty echoes anything typed earlier
    // into the middle of the guest's own output.
    options.script = {{"KEEL-TEST action=shell", ""}, {"/ # ", "echo shell-$((6*7))\n"}, {"shell-42", "exit\n"}};
    const auto b = boot(guest, guest.kernel, 1, "256M", "keel.action=shell", options);
    require_clean_exit(b);
    CHECK(b.result.out.find("shell-42") != std::string::npos);
}

TEST_CASE("at a terminal the console is raw and Ctrl-A x quits keel", "[kvm]") {
    const auto guest = stock_guest();
    ProcessOptions options;
    // In raw mode Ctrl-C (0x03) reaches the guest's shell as a character
    // instead of killing keel: the shell abandons the half-typed line. Then
    // Ctrl-A x asks keel itself to quit.
    options.script = {{"KEEL-TEST action=shell", ""},
                      {"/ # ", "echo not-run\x03"},
                      {"^C", "echo raw-$((6*7))\r"},
                      {"raw-42", "\x01x"}};
    const auto r = run_in_pty({keel_binary(), "run", "--kernel", guest.kernel, "--initrd", guest.initrd, "--memory",
                               "256M", "--cmdline", "console=ttyS0 reboot=k panic=-1 keel.action=shell"},
                              options);
    INFO("terminal:\n" << r.out);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("raw-42") != std::string::npos);
    CHECK(r.out.find("not-run\r\n") == std::string::npos);  // the Ctrl-C'd line never ran
}

TEST_CASE("guest RAM above the 4 GiB boundary is usable", "[kvm]") {
    // 3.5 GiB: 3 GiB below the MMIO hole and 512 MiB above 4 GiB.
    const auto guest = stock_guest();
    const auto b = boot(guest, guest.kernel, 1, "3584M");
    require_clean_exit(b);
    check_guest_sees(b, 1, 3584);
}
