// virtio-net end to end (needs /dev/kvm and root; scripts/test runs these
// inside scripts/kvm-sandbox elsewhere). Each test makes a network namespace
// of its own with TAP interfaces whose host ends have link-local addresses,
// and runs keel inside it. The test init gives the guest's NICs addresses
// from keel.net= and reports what it sees (the nics marker); traffic is then
// checked from both ends: ping, 64 MiB each way over TCP with the sha256
// computed on both sides, and an HTTP page served by the guest.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "guest_boot.h"
#include "net_host.h"

using namespace keel::test;

namespace {

constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kTransferBytes = 64 * kMiB;
constexpr const char* kGuestMac = "02:4b:45:45:4c:01";
constexpr const char* kToGuestPort = "5001";
constexpr const char* kToHostPort = "5002";
constexpr const char* kDonePort = "5000";

// Subnet n is 169.254.(100+n).0/24: the host's end of TAP n is .1, the guest's NIC .2.
std::string host_address(int subnet) {
    return "169.254." + std::to_string(100 + subnet) + ".1";
}
std::string guest_address(int subnet) {
    return "169.254." + std::to_string(100 + subnet) + ".2";
}

GuestImage guest_named(const std::string& name) {
    return name == "stock" ? stock_guest() : minimal_guest();
}

// False (with the reason as a warning) when this test cannot run here.
bool can_run(const GuestImage& guest) {
    if (guest.kernel.empty()) {
        WARN("minimal kernel not built (guest-images/build-minimal-kernel): not tested");
        return false;
    }
    if (!can_create_net_namespaces()) {
        WARN("network tests need root (network namespaces, TAPs) and iproute2: not tested");
        return false;
    }
    return true;
}


void write_random_file(const std::string& path, uint64_t size) {
    std::ofstream out(path, std::ios::binary);
    std::mt19937_64 random(std::random_device{}());
    std::vector<uint64_t> block(8192);
    for (uint64_t done = 0; done < size; done += block.size() * sizeof(uint64_t)) {
        for (auto& word : block) word = random();
        out.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(block.size() * 8));
    }
}

std::string host_sha256(const std::string& path) {
    const auto r = run_process({"/usr/bin/sha256sum", path});
    return r.exit_code == 0 ? r.out.substr(0, r.out.find(' ')) : "sha256sum failed: " + r.err;
}

uint64_t file_size(const std::string& path) {
    std::error_code error;
    const auto size = std::filesystem::file_size(path, error);
    return error ? 0 : size;
}

std::string random_token() {
    std::mt19937_64 random(std::random_device{}());
    std::ostringstream text;
    text << std::hex << random();
    return text.str();
}

// The counters keel's --stats-json reports for device `name` (empty when none).
nlohmann::json device_counters(const Boot& b, const std::string& name) {
    if (!b.stats.contains("devices")) return nlohmann::json::object();
    for (const auto& device : b.stats["devices"]) {
        if (device.value("name", "") == name) return device.value("counters", nlohmann::json::object());
    }
    return nlohmann::json::object();
}

std::string describe(const char* what, const ProcessResult& r) {
    return std::string(what) + ": exit " + std::to_string(r.exit_code) + (r.timed_out ? " (timed out)" : "") +
           (r.killed ? " (stopped)" : "") + "\n" + r.out.substr(0, 2000) + r.err.substr(0, 2000);
}

// Retries a connection until the guest's listener is up (30 s at most).
std::string nc_with_retries(const std::string& address, const std::string& port, const std::string& input) {
    return "for i in $(seq 30); do busybox nc " + address + " " + port + " <" + input +
           " && exit 0; sleep 1; done; exit 1";
}

ProcessOptions host_command_options(std::stop_token stop, int timeout_seconds) {
    ProcessOptions options;
    options.timeout = std::chrono::seconds(timeout_seconds);
    options.kill_when = stop_with(std::move(stop));
    return options;
}

// The guest pings the host, serves `page` over HTTP, receives a file on
// port 5001 (the host sends it once it sees rx-ready) and sends 64 MiB of
// its own to the host's port 5002. A busybox nc listener with stdin at EOF
// would half-close at once and cut the sender short, hence `-e` with cat.
// Kept short: the script travels base64-encoded on a 2 KiB command line.
std::string transfer_script(const std::string& page) {
    return "H=" + host_address(0) + "\nP=" + page + R"SH(
t() { echo "KEEL-TEST $1=$2"; }
ping -c 3 -W 10 $H >/dev/null; t ping-host $?
mkdir /w; echo $P >/w/index.html; httpd -p 80 -h /w; t httpd $?
timeout 300 nc -l -p 5001 -e sh -c 'cat >/tmp/in' & L=$!
i=0; until netstat -ltn | grep -q ':5001 ' || [ $i -gt 99 ]; do sleep 0.1; i=$((i+1)); done
t rx-ready 5001
wait $L; t rx-rc $?
t rx-bytes "$(wc -c </tmp/in)"
t rx-sha "$(sha256sum </tmp/in | cut -d' ' -f1)"
rm /tmp/in
dd if=/dev/urandom of=/tmp/out bs=1M count=64 2>/dev/null
t tx-sha "$(sha256sum </tmp/out | cut -d' ' -f1)"
r=1; i=0; while [ $i -lt 30 ]; do nc $H 5002 </tmp/out && { r=0; break; }; sleep 1; i=$((i+1)); done; t tx-rc $r
)SH";
}

// One boot of the transfer test, with what the host side saw.
struct TransferRun {
    Boot boot;
    ProcessResult host_ping, host_wget, host_send, received;
    bool host_side_ran = false;
};

TransferRun run_transfer(const GuestImage& guest, const std::string& transport, const std::string& to_guest,
                         const std::string& from_guest, const std::string& page) {
    const NetNamespace ns;
    ns.add_tap("ktap0", host_address(0) + "/24");
    BackgroundProcess listener(
        ns.command({"busybox", "nc", "-l", "-p", kToHostPort, "-e", "sh", "-c", "cat >'" + from_guest + "'"}),
        std::chrono::seconds(900));

    TransferRun run;
    HostAction host_side("KEEL-TEST rx-ready=", [&](std::stop_token stop) {
        run.host_ping = run_process(ns.command({"busybox", "ping", "-c", "3", "-W", "10", guest_address(0)}),
                                    host_command_options(stop, 60));
        run.host_wget = run_process(
            ns.command({"timeout", "60", "busybox", "wget", "-q", "-O", "-", "http://" + guest_address(0) + "/"}),
            host_command_options(stop, 90));
        run.host_send = ns.shell(nc_with_retries(guest_address(0), kToGuestPort, "'" + to_guest + "'"),
                                 host_command_options(stop, 400));
    });

    BootRequest request;
    request.kernel = guest.kernel;
    request.initrd = guest.initrd;
    request.cpus = 2;
    request.memory = "512M";  // two 64 MiB files in the guest's tmpfs
    // nokaslr: a stuck vCPU's rip in keel's statistics then matches System.map.
    request.cmdline_extra = "nokaslr keel.net=eth0=" + guest_address(0) + "/24";
    request.guest_script = transfer_script(page);
    request.command_prefix = ns.command({});
    request.keel_args = {"--transport", transport, "--net", "tap=ktap0,mac=" + std::string(kGuestMac) + ",id=lan0"};
    // Healthy runs take 30-70 s in the emulated sandbox, ASan build included.
    request.options.timeout = std::chrono::seconds(300);
    request.options.watch = host_side.watcher();
    run.boot = boot(request);
    run.host_side_ran = host_side.stop();
    run.received = listener.finish(std::chrono::seconds(10));
    return run;
}

void ping_tcp_http_and_mac(const std::string& kernel_name, const std::string& transport) {
    INFO("kernel " << kernel_name << ", transport " << transport);
    const auto guest = guest_named(kernel_name);
    if (!can_run(guest)) return;
    const ScratchDir dir;
    const std::string to_guest = dir.path + "/to-guest";
    const std::string from_guest = dir.path + "/from-guest";
    write_random_file(to_guest, kTransferBytes);
    const std::string to_guest_sha = host_sha256(to_guest);
    const std::string page = "keel-net-page-" + random_token();

    const auto run = retry_once_after_emulated_host_failure("net transfer, " + kernel_name + " kernel, " + transport, [&] {
        return run_transfer(guest, transport, to_guest, from_guest, page);
    });
    const auto& b = run.boot;
    const auto& host_ping = run.host_ping;
    const auto& host_wget = run.host_wget;
    const auto& host_send = run.host_send;
    const auto& received = run.received;
    const bool host_side_ran = run.host_side_ran;

    INFO(describe("host ping", host_ping));
    INFO(describe("host wget", host_wget));
    INFO(describe("host send", host_send));
    INFO(describe("host receive", received));
    require_clean_exit(b);
    INFO("guest console:\n" << b.result.out);
    INFO("keel stderr:\n" << b.result.err);

    // What the guest saw: one NIC with the MAC keel was given, up, addressed.
    CHECK(marker(b.result.out, "nics") == "eth0:" + std::string(kGuestMac) + ":1500:up:" + guest_address(0) + "/24");
    CHECK(marker(b.result.out, "run-exit") == "0");

    // a. ping both ways
    CHECK(marker(b.result.out, "ping-host") == "0");
    REQUIRE(host_side_ran);
    CHECK(host_ping.exit_code == 0);

    // c. HTTP from the guest's busybox httpd
    CHECK(marker(b.result.out, "httpd") == "0");
    CHECK(host_wget.exit_code == 0);
    CHECK(host_wget.out == page + "\n");

    // b. 64 MiB each way, sha256 on both ends
    CHECK(host_send.exit_code == 0);
    CHECK(marker(b.result.out, "rx-rc") == "0");
    CHECK(marker(b.result.out, "rx-bytes") == std::to_string(kTransferBytes));
    CHECK(marker(b.result.out, "rx-sha") == to_guest_sha);
    CHECK(marker(b.result.out, "tx-rc") == "0");
    CHECK(received.exit_code == 0);
    CHECK(file_size(from_guest) == kTransferBytes);
    const auto tx_sha = marker(b.result.out, "tx-sha");
    REQUIRE(tx_sha.has_value());
    CHECK(*tx_sha == host_sha256(from_guest));

    // keel counted the traffic on the device named by id=.
    const auto counters = device_counters(b, "lan0");
    INFO("lan0 counters: " << counters.dump());
    CHECK(counters.value("rx_bytes", uint64_t{0}) >= kTransferBytes);
    CHECK(counters.value("tx_bytes", uint64_t{0}) >= kTransferBytes);
    CHECK(counters.value("errors", uint64_t{1}) == 0);
}

// "eth0:02:..:1500:up:169.254.100.2/24,eth1:..." -> entries
std::vector<std::string> split(const std::string& list, char separator) {
    std::vector<std::string> out;
    std::istringstream in(list);
    for (std::string item; std::getline(in, item, separator);) out.push_back(item);
    return out;
}

void two_nics(const std::string& kernel_name, const std::string& transport) {
    INFO("kernel " << kernel_name << ", transport " << transport);
    const auto guest = guest_named(kernel_name);
    if (!can_run(guest)) return;
    const NetNamespace ns;
    ns.add_tap("ktap0", host_address(0) + "/24");
    ns.add_tap("ktap1", host_address(1) + "/24");

    ProcessResult host_ping0, host_ping1, host_done;
    HostAction host_side("KEEL-TEST pinged=", [&](std::stop_token stop) {
        host_ping0 = run_process(ns.command({"busybox", "ping", "-c", "3", "-W", "10", guest_address(0)}),
                                 host_command_options(stop, 60));
        host_ping1 = run_process(ns.command({"busybox", "ping", "-c", "3", "-W", "10", guest_address(1)}),
                                 host_command_options(stop, 60));
        host_done = ns.shell(nc_with_retries(guest_address(1), kDonePort, "/dev/null"), host_command_options(stop, 60));
    });

    BootRequest request;
    request.kernel = guest.kernel;
    request.initrd = guest.initrd;
    request.cpus = 2;
    request.cmdline_extra = "keel.net=eth0=" + guest_address(0) + "/24,eth1=" + guest_address(1) + "/24";
    // The guest waits on port 5000 until the host has pinged both NICs.
    request.guest_script = "A=" + host_address(0) + "\nB=" + host_address(1) + R"SH(
t() { echo "KEEL-TEST $1=$2"; }
ping -c 3 -W 10 $A >/dev/null; t ping-host0 $?
ping -c 3 -W 10 $B >/dev/null; t ping-host1 $?
timeout 300 nc -l -p 5000 -e true & L=$!
i=0; until netstat -ltn | grep -q ':5000 ' || [ $i -gt 99 ]; do sleep 0.1; i=$((i+1)); done
t pinged 1
wait $L; t host-done $?
)SH";
    request.command_prefix = ns.command({});
    request.keel_args = {"--transport", transport, "--net", "tap=ktap0", "--net", "tap=ktap1"};
    request.options.watch = host_side.watcher();
    const auto b = boot(request);
    const bool host_side_ran = host_side.stop();

    INFO(describe("host ping eth0", host_ping0));
    INFO(describe("host ping eth1", host_ping1));
    INFO(describe("host done", host_done));
    require_clean_exit(b);
    INFO("guest console:\n" << b.result.out);
    INFO("keel stderr:\n" << b.result.err);

    const auto nics = split(marker(b.result.out, "nics").value_or(""), ',');
    REQUIRE(nics.size() == 2);
    std::vector<std::string> macs;
    for (int i = 0; i < 2; ++i) {
        // NAME:MAC:MTU:STATE:ADDRESS, the MAC itself holding five ':'
        const std::string prefix = "eth" + std::to_string(i) + ":";
        const auto& entry = nics[static_cast<size_t>(i)];
        INFO("nic entry " << entry);
        REQUIRE(entry.size() > prefix.size() + 17);
        CHECK(entry.substr(0, prefix.size()) == prefix);
        const std::string mac = entry.substr(prefix.size(), 17);
        CHECK(entry.substr(prefix.size() + 17) == ":1500:up:" + guest_address(i) + "/24");
        // keel's default MAC: locally administered, unicast.
        const auto first_octet = std::stoul(mac.substr(0, 2), nullptr, 16);
        CHECK((first_octet & 0x3) == 0x2);
        macs.push_back(mac);
    }
    CHECK(macs[0] != macs[1]);

    CHECK(marker(b.result.out, "ping-host0") == "0");
    CHECK(marker(b.result.out, "ping-host1") == "0");
    REQUIRE(host_side_ran);
    CHECK(host_ping0.exit_code == 0);
    CHECK(host_ping1.exit_code == 0);
    CHECK(host_done.exit_code == 0);
    CHECK(marker(b.result.out, "host-done") == "0");
    CHECK(marker(b.result.out, "run-exit") == "0");
    for (const char* device : {"net0", "net1"}) {
        const auto counters = device_counters(b, device);
        INFO(device << " counters: " << counters.dump());
        CHECK(counters.value("rx_packets", uint64_t{0}) > 0);
        CHECK(counters.value("tx_packets", uint64_t{0}) > 0);
    }
}

}  // namespace

TEST_CASE("stock kernel over virtio-pci: ping, 64 MiB each way over TCP, HTTP and the MAC keel gave", "[kvm]") {
    ping_tcp_http_and_mac("stock", "pci");
}
TEST_CASE("stock kernel over virtio-mmio: ping, 64 MiB each way over TCP, HTTP and the MAC keel gave", "[kvm]") {
    ping_tcp_http_and_mac("stock", "mmio");
}
TEST_CASE("minimal kernel over virtio-pci: ping, 64 MiB each way over TCP, HTTP and the MAC keel gave", "[kvm]") {
    ping_tcp_http_and_mac("minimal", "pci");
}
TEST_CASE("minimal kernel over virtio-mmio: ping, 64 MiB each way over TCP, HTTP and the MAC keel gave", "[kvm]") {
    ping_tcp_http_and_mac("minimal", "mmio");
}

TEST_CASE("stock kernel over virtio-pci: two NICs on two TAPs and subnets both carry traffic", "[kvm]") {
    two_nics("stock", "pci");
}
TEST_CASE("stock kernel over virtio-mmio: two NICs on two TAPs and subnets both carry traffic", "[kvm]") {
    two_nics("stock", "mmio");
}
TEST_CASE("minimal kernel over virtio-pci: two NICs on two TAPs and subnets both carry traffic", "[kvm]") {
    two_nics("minimal", "pci");
}
TEST_CASE("minimal kernel over virtio-mmio: two NICs on two TAPs and subnets both carry traffic", "[kvm]") {
    two_nics("minimal", "mmio");
}
