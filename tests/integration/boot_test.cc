// Boots real Linux guests (needs /dev/kvm: scripts/test runs these inside
// scripts/kvm-sandbox where the host has none) and asserts on what the guest
// itself reports over its console.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>

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

namespace {

// Grows the host's 2 MiB huge-page pool by `pages` for one test and gives them
// back after it (needs root, as the network tests do; the sandbox runs as root).
class HugePagePool {
public:
    explicit HugePagePool(uint64_t pages) : m_before(read_number_file(kNrPath)) {
        std::ofstream(kNrPath) << m_before + pages << "\n";
        m_free = read_number_file("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
    }
    ~HugePagePool() { std::ofstream(kNrPath) << m_before << "\n"; }
    HugePagePool(const HugePagePool&) = delete;
    HugePagePool& operator=(const HugePagePool&) = delete;
    [[nodiscard]] uint64_t free_pages() const { return m_free; }

private:
    static constexpr const char* kNrPath = "/proc/sys/vm/nr_hugepages";
    uint64_t m_before;
    uint64_t m_free = 0;
};

}  // namespace

TEST_CASE("guest RAM on 2 MiB huge pages: the stock kernel boots and sees all of it", "[kvm]") {
    const auto guest = stock_guest();
    const HugePagePool pool(128);  // 256 MiB
    REQUIRE(pool.free_pages() >= 128);
    BootRequest request;
    request.kernel = guest.kernel;
    request.initrd = guest.initrd;
    request.memory = "256M";
    request.keel_args = {"--hugepages"};
    const auto b = keel::test::boot(request);
    require_clean_exit(b);
    check_guest_sees(b, 1, 256);
    INFO("stats: " << b.stats.dump());
    CHECK(b.stats["guest_memory_backing"] == "2 MiB huge pages");
    // What the guest touched is counted in whole huge pages (smaps' Private_Hugetlb).
    const uint64_t touched_kib = b.stats["memory_kib"]["guest_ram_touched"]["rss"].get<uint64_t>();
    CHECK(touched_kib >= 16 * 1024);
    CHECK(touched_kib <= 256 * 1024);
    CHECK(touched_kib % 2048 == 0);
}

TEST_CASE("keel --no-api --config-file boots the stock kernel with its vCPUs, memory, root drive and entropy", "[kvm]") {
    const auto guest = stock_guest();
    const auto dir = scratch_dir();
    const std::string image = dir + "/rootfs.img";
    {
        std::ofstream(image, std::ios::binary).seekp(4 * 1024 * 1024 - 1) << '\0';  // 8192 sectors
    }
    const std::string log = dir + "/keel.log";
    nlohmann::json config = {
        {"boot-source",
         {{"kernel_image_path", guest.kernel},
          {"initrd_path", guest.initrd},
          {"boot_args", "console=ttyS0 reboot=k panic=-1"}}},
        {"drives",
         {{{"drive_id", "rootfs"},
           {"is_root_device", true},
           {"is_read_only", true},
           {"path_on_host", image},
           {"io_engine", "Sync"}}}},
        {"machine-config", {{"vcpu_count", 2}, {"mem_size_mib", 320}}},
        {"entropy", nlohmann::json::object()},
        {"logger", {{"log_path", log}, {"level", "Debug"}, {"show_level", true}}},
        {"metrics", {{"metrics_path", dir + "/metrics.json"}}},
        {"mmds-config", nullptr}};
    const std::string config_path = dir + "/vm.json";
    std::ofstream(config_path) << config.dump(2);
    const std::string stats_path = dir + "/stats.json";
    const auto attempt = [&] {
        for (const auto& stale : {log, dir + "/metrics.json"}) std::filesystem::remove(stale);
        // Firecracker's one-shot command line, as is.
        return run_keel_boot({keel_binary(), "--no-api", "--config-file", config_path, "--stats-json", stats_path},
                             stats_path);
    };
    const Boot b = retry_once_after_emulated_host_failure("config-file boot", attempt);
    const auto& r = b.result;
    require_clean_exit(b);
    INFO("guest console:\n" << r.out);
    check_guest_sees(b, 2, 320);
    // The root drive is vda, read-only, 8192 sectors; "ro" and root= reached the kernel.
    CHECK(marker(r.out, "disks") == "vda:8192:1:");
    CHECK(marker(r.out, "rng") == "virtio_rng.0");
    CHECK(r.out.find("Kernel command line: console=ttyS0 reboot=k panic=-1 root=/dev/vda ro") != std::string::npos);
    // keel's log went to logger.log_path, not to stderr.
    std::ifstream log_file(log);
    const std::string logged((std::istreambuf_iterator<char>(log_file)), std::istreambuf_iterator<char>());
    INFO("keel stderr:\n" << r.err << "\nlog file:\n" << logged);
    CHECK(logged.find("[keel debug] PCI 00:") != std::string::npos);
    CHECK(r.err.find("PCI 00:") == std::string::npos);
    // With no API socket keel still writes the metrics file: its last line
    // when the VM stopped, with the vCPUs' exits and the devices' counters.
    std::ifstream metrics_file(dir + "/metrics.json");
    std::string line, last;
    while (std::getline(metrics_file, line)) last = line;
    INFO("last metrics line: " << last);
    const auto metrics = nlohmann::json::parse(last, nullptr, false);
    REQUIRE(metrics.is_object());
    CHECK(metrics["vcpu"]["exit_io_out"].get<uint64_t>() > 0);
    CHECK(metrics["block_rootfs"]["read_bytes"].get<uint64_t>() > 0);
    CHECK(metrics["entropy_rng"].is_object());
    CHECK(metrics["boot_ms"].contains("guest mmio 123"));
    CHECK(metrics["memory_kib"]["overhead"]["rss"].get<uint64_t>() > 0);
}
