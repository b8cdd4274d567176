// virtio-blk and virtio-rng end to end (needs /dev/kvm; scripts/test runs
// these inside scripts/kvm-sandbox elsewhere): what the guest sees and writes
// is checked against the image files on the host.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <csignal>

#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "guest_boot.h"

using namespace keel::test;

namespace {

constexpr uint64_t kMiB = 1024 * 1024;

std::string make_image(const std::string& dir, const std::string& name, uint64_t size, uint32_t seed) {
    const std::string path = dir + "/" + name;
    std::ofstream out(path, std::ios::binary);
    std::mt19937 random(seed);
    std::string block(64 * 1024, '\0');
    for (uint64_t done = 0; done < size; done += block.size()) {
        for (auto& c : block) c = static_cast<char>(random());
        out.write(block.data(), static_cast<std::streamsize>(std::min<uint64_t>(block.size(), size - done)));
    }
    return path;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// sha256 of the first `bytes` bytes of a file, by the host's coreutils.
std::string host_sha256(const std::string& path, uint64_t bytes) {
    const auto r = run_process({"/bin/sh", "-c", "head -c " + std::to_string(bytes) + " '" + path + "' | sha256sum"});
    return r.out.substr(0, r.out.find(' '));
}

GuestImage guest_named(const std::string& name) { return name == "stock" ? stock_guest() : minimal_guest(); }

// What the guest does with its three disks: vda (writable) gets 4 MiB of
// random data through dd conv=fsync; vdb (read-only) is read, then a write
// is tried: Linux refuses it already (virtio-blk's RO feature makes the disk
// read-only; blockdev --setrw does not lift that), so the request never
// reaches keel, whose own IOERR for such writes is unit-tested
// (tests/unit/block); vdc gets an ext2 file system with files on it. Kept short: the script
// travels base64-encoded on a 2 KiB kernel command line.
constexpr const char* kDiskScript = R"SH(t() { echo "KEEL-TEST $1=$2"; }
dd if=/dev/urandom of=/tmp/r bs=64k count=64 2>/dev/null
t rand-sha "$(sha256sum </tmp/r | cut -d' ' -f1)"
dd if=/tmp/r of=/dev/vda bs=64k conv=fsync 2>/dev/null; t write-rc $?
t ro-sha "$(sha256sum </dev/vdb | cut -d' ' -f1)"
blockdev --setrw /dev/vdb
dd if=/dev/zero of=/dev/vdb bs=4k count=1 oflag=direct 2>/dev/null; t ro-write-rc $?
mke2fs -q /dev/vdc >/dev/null && mkdir /mnt && mount /dev/vdc /mnt || t fs-rc mount
i=0; while [ $i -lt 40 ]; do dd if=/dev/urandom of=/mnt/f$i bs=4k count=8 2>/dev/null; i=$((i+1)); done
cp /tmp/r /mnt/big && sync && umount /mnt; t fs-rc $?
t hwrng-bytes "$(dd if=/dev/hwrng bs=64 count=1 2>/dev/null | wc -c)"
)SH";

// How the guest's interrupt code handles the virtio lines (/proc/interrupts):
// virtio-pci's MSI-X vectors are edges; virtio-mmio's lines, level-triggered
// as ACPI describes them, run Linux's fasteoi flow (acknowledge, then EOI).
constexpr const char* kIrqFlowScript =
    R"SH(echo "KEEL-TEST irq-flow=$(awk '/virtio/{print $(NF-1)}' /proc/interrupts | sed 's/^[0-9]*-//' | sort -u | tr '\n' ,)"
)SH";

void disks_and_rng(const std::string& kernel_name, const std::string& transport) {
    INFO("kernel " << kernel_name << ", transport " << transport);
    const auto guest = guest_named(kernel_name);
    if (guest.kernel.empty()) {
        WARN("minimal kernel not built (guest-images/build-minimal-kernel): not tested");
        return;
    }
    const auto dir = scratch_dir();
    const auto data = make_image(dir, "data.img", 8 * kMiB, 1);
    const auto readonly = make_image(dir, "readonly.img", 1 * kMiB, 2);
    const auto fs = make_image(dir, "fs.img", 32 * kMiB, 3);
    const auto readonly_before = read_file(readonly);

    BootRequest request;
    request.kernel = guest.kernel;
    request.initrd = guest.initrd;
    request.cpus = 2;
    request.guest_script = std::string(kDiskScript) + kIrqFlowScript;
    request.keel_args = {"--transport", transport,
                         "--disk", "path=" + data + ",serial=data0",
                         "--disk", "path=" + readonly + ",readonly=on,id=ro",
                         "--disk", "path=" + fs,
                         "--rng"};
    const auto b = boot(request);
    require_clean_exit(b);
    INFO("guest console:\n" << b.result.out);
    INFO("keel stderr:\n" << b.result.err);

    CHECK(marker(b.result.out, "disks") == "vda:16384:0:data0,vdb:2048:1:,vdc:65536:0:");
    CHECK(marker(b.result.out, "run-exit") == "0");
    CHECK(marker(b.result.out, "write-rc") == "0");
    const auto guest_sha = marker(b.result.out, "rand-sha");
    REQUIRE(guest_sha.has_value());
    CHECK(*guest_sha == host_sha256(data, 4 * kMiB));

    CHECK(marker(b.result.out, "ro-sha") == host_sha256(readonly, 1 * kMiB));
    CHECK(marker(b.result.out, "ro-write-rc") != "0");
    CHECK(read_file(readonly) == readonly_before);

    CHECK(marker(b.result.out, "fs-rc") == "0");
    const auto fsck = run_process({"/sbin/e2fsck", "-fn", fs});
    INFO("e2fsck:\n" << fsck.out << fsck.err);
    CHECK(fsck.exit_code == 0);

    CHECK(marker(b.result.out, "rng") == "virtio_rng.0");
    CHECK(marker(b.result.out, "hwrng-bytes") == "64");
    CHECK(marker(b.result.out, "irq-flow") == (transport == "mmio" ? "fasteoi," : "edge,"));

    // The devices report their work in --stats.
    REQUIRE(b.stats.contains("devices"));
    uint64_t written = 0;
    for (const auto& device : b.stats["devices"]) {
        if (device.value("name", "") == "blk0") written = device["counters"].value("written_bytes", uint64_t{0});
    }
    CHECK(written >= 4 * kMiB);
}

}  // namespace

TEST_CASE("stock kernel over virtio-pci: disks, read-only refusal, ext2 and rng", "[kvm]") {
    disks_and_rng("stock", "pci");
}
TEST_CASE("stock kernel over virtio-mmio: disks, read-only refusal, ext2 and rng", "[kvm]") {
    disks_and_rng("stock", "mmio");
}
TEST_CASE("minimal kernel over virtio-pci: disks, read-only refusal, ext2 and rng", "[kvm]") {
    disks_and_rng("minimal", "pci");
}
TEST_CASE("minimal kernel over virtio-mmio: disks, read-only refusal, ext2 and rng", "[kvm]") {
    disks_and_rng("minimal", "mmio");
}

namespace {

// Records the guest reported as synced, in the order printed. Only whole
// lines count: keel may be killed in the middle of one.
std::vector<uint64_t> synced_records(const std::string& out) {
    std::vector<uint64_t> records;
    const auto complete = out.substr(0, out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
    for (const auto& [key, value] : guest_markers(complete)) {
        if (key != "synced" || value.empty() || value.find_first_not_of("0123456789") != std::string::npos) continue;
        records.push_back(std::stoull(value));
    }
    return records;
}

std::string record_text(uint64_t n) {
    char text[32];
    std::snprintf(text, sizeof text, "keel-record-%08llu\n", static_cast<unsigned long long>(n));
    return text;
}

void acknowledged_writes_survive_sigkill(const std::string& kernel_name, const std::string& transport) {
    INFO("kernel " << kernel_name << ", transport " << transport);
    const auto guest = guest_named(kernel_name);
    if (guest.kernel.empty()) {
        WARN("minimal kernel not built (guest-images/build-minimal-kernel): not tested");
        return;
    }
    const auto dir = scratch_dir();
    const auto image = dir + "/records.img";
    std::ofstream(image, std::ios::binary).close();
    REQUIRE(truncate(image.c_str(), 4 * kMiB) == 0);

    std::random_device seed;
    std::mt19937 random(seed());
    const uint64_t kill_after = std::uniform_int_distribution<uint64_t>(20, 40)(random);
    const auto extra_delay = std::chrono::microseconds(std::uniform_int_distribution<int>(0, 200'000)(random));

    BootRequest request;
    request.kernel = guest.kernel;
    request.initrd = guest.initrd;
    // Record n goes to sector n, padded to a sector (conv=sync), fsync'd
    // (conv=fsync) before the guest says it is synced.
    request.guest_script = R"SH(i=1; while [ $i -lt 8000 ]; do
printf 'keel-record-%08d\n' $i | dd of=/dev/vda bs=512 seek=$i conv=sync,fsync 2>/dev/null || break
echo "KEEL-TEST synced=$i"; i=$((i+1)); done)SH";
    request.keel_args = {"--transport", transport, "--disk", "path=" + image};
    request.options.kill_when = [&](const std::string& out) {
        if (synced_records(out).size() < kill_after) return false;
        std::this_thread::sleep_for(extra_delay);
        return true;
    };
    const auto b = boot(request);
    INFO("guest console:\n" << b.result.out);
    INFO("keel stderr:\n" << b.result.err);
    REQUIRE(b.result.killed);
    REQUIRE(b.result.term_signal == SIGKILL);

    const auto records = synced_records(b.result.out);
    REQUIRE(records.size() >= 20);
    const auto contents = read_file(image);
    for (const uint64_t n : records) {
        INFO("record " << n);
        REQUIRE(contents.size() >= (n + 1) * 512);
        CHECK(contents.compare(n * 512, record_text(n).size(), record_text(n)) == 0);
    }
}

}  // namespace

TEST_CASE("every write the guest saw fsync'd survives SIGKILL of keel (virtio-pci)", "[kvm]") {
    acknowledged_writes_survive_sigkill("stock", "pci");
}
TEST_CASE("every write the guest saw fsync'd survives SIGKILL of keel (virtio-mmio)", "[kvm]") {
    acknowledged_writes_survive_sigkill("minimal", "mmio");
}

TEST_CASE("a second keel cannot open a writable disk image that a running keel uses", "[kvm]") {
    const auto guest = stock_guest();
    const auto dir = scratch_dir();
    const auto image = make_image(dir, "shared.img", 1 * kMiB, 4);

    ProcessResult second;
    BootRequest request;
    request.kernel = guest.kernel;
    request.initrd = guest.initrd;
    request.keel_args = {"--disk", "path=" + image};
    request.cmdline_extra = "keel.action=shell";
    // Once the first keel's guest is up, start a second keel on the same
    // image; then stop the first.
    request.options.kill_when = [&](const std::string& out) {
        if (out.find("KEEL-TEST action=shell") == std::string::npos) return false;
        second = run_process({keel_binary(), "run", "--kernel", guest.kernel, "--initrd", guest.initrd, "--disk",
                              "path=" + image});
        return true;
    };
    request.options.keep_stdin_open = true;
    const auto b = boot(request);
    INFO("first keel:\n" << b.result.out << b.result.err);
    INFO("second keel stderr:\n" << second.err);
    REQUIRE(b.result.killed);
    CHECK(second.exit_code != 0);
    CHECK(second.err.find("error: ") == 0);
    CHECK(second.err.find(image) != std::string::npos);
    CHECK(second.err.find("in use") != std::string::npos);
}

TEST_CASE("without ACPI a minimal kernel finds virtio-mmio devices through keel's command-line parameters", "[kvm]") {
    const auto guest = minimal_guest();
    if (guest.kernel.empty()) {
        WARN("minimal kernel not built (guest-images/build-minimal-kernel): not tested");
        return;
    }
    const auto dir = scratch_dir();
    const auto image = make_image(dir, "disk.img", 1 * kMiB, 5);
    BootRequest request;
    request.kernel = guest.kernel;
    request.initrd = guest.initrd;
    // Without ACPI there is no power-off: the guest ends the VM by rebooting
    // through the i8042 (reboot=k).
    request.cmdline_extra = "acpi=off keel.action=reboot";
    request.guest_script = kIrqFlowScript;
    request.keel_args = {"--transport", "mmio", "--disk", "path=" + image + ",readonly=on,serial=noacpi", "--rng"};
    const auto b = boot(request);
    require_clean_exit(b);
    INFO("guest console:\n" << b.result.out);
    CHECK(marker(b.result.out, "acpi") == "no");
    CHECK(marker(b.result.out, "disks") == "vda:2048:1:noacpi");
    CHECK(marker(b.result.out, "rng") == "virtio_rng.0");
    // Command-line devices sit on ISA lines, which Linux sets up as edges.
    CHECK(marker(b.result.out, "irq-flow") == "edge,");
}
