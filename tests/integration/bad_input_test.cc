// Bad input from the command line: each case must end with exactly one line on
// stderr starting with "error:", a non-zero exit, and no crash. These run
// before keel touches KVM, so they run on every host.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "guest_files.h"
#include "process.h"

using namespace keel::test;

namespace {

ProcessResult run_keel(std::vector<std::string> args) {
    args.insert(args.begin(), keel_binary());
    ProcessOptions options;
    options.timeout = std::chrono::seconds(60);
    return run_process(args, options);
}

void require_one_line_error(const ProcessResult& r, const std::string& expected) {
    INFO("stdout: " << r.out);
    INFO("stderr: " << r.err);
    CHECK_FALSE(r.timed_out);
    CHECK(r.term_signal == 0);
    CHECK(r.exit_code > 0);
    REQUIRE_FALSE(r.err.empty());
    CHECK(r.err.rfind("error: ", 0) == 0);
    CHECK(r.err.find('\n') == r.err.size() - 1);  // exactly one line
    CHECK(r.err.find(expected) != std::string::npos);
    CHECK(r.err.find("terminate called") == std::string::npos);
    CHECK(r.err.find("Sanitizer") == std::string::npos);
}

std::string write_file(const std::string& dir, const std::string& name, const std::string& content) {
    const std::string path = dir + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
}

std::string truncated_copy(const std::string& from, const std::string& to, uintmax_t size) {
    std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::resize_file(to, size);
    return to;
}

}  // namespace

TEST_CASE("a missing kernel is a one-line error", "[cli]") {
    require_one_line_error(run_keel({"run", "--kernel", "/nonexistent/bzImage"}),
                           "cannot open kernel image '/nonexistent/bzImage': No such file or directory");
}

TEST_CASE("a text file as kernel is a one-line error", "[cli]") {
    const auto dir = scratch_dir();
    const auto text = write_file(dir, "kernel.txt", "this is not a kernel\n");
    require_one_line_error(run_keel({"run", "--kernel", text}), "kernel.txt");
}

TEST_CASE("a truncated bzImage is a one-line error", "[cli]") {
    const auto guest = stock_guest();
    const auto dir = scratch_dir();
    const auto cut = truncated_copy(guest.kernel, dir + "/bzImage-cut", 100 * 1024);
    require_one_line_error(run_keel({"run", "--kernel", cut}), "truncated");
}

// An ELF64 x86-64 executable with one PT_LOAD segment and no notes at all.
std::string elf_without_pvh_note() {
    std::string elf(4096, '\0');
    const auto put = [&](size_t offset, uint64_t value, size_t width) {
        for (size_t i = 0; i < width; ++i) elf[offset + i] = static_cast<char>((value >> (8 * i)) & 0xff);
    };
    elf.replace(0, 4, "\x7f" "ELF");
    put(4, 2, 1);           // ELFCLASS64
    put(5, 1, 1);           // little endian
    put(6, 1, 1);           // EV_CURRENT
    put(16, 2, 2);          // ET_EXEC
    put(18, 62, 2);         // EM_X86_64
    put(20, 1, 4);          // e_version
    put(24, 0x1000000, 8);  // e_entry
    put(32, 64, 8);         // e_phoff
    put(52, 64, 2);         // e_ehsize
    put(54, 56, 2);         // e_phentsize
    put(56, 1, 2);          // e_phnum
    put(64, 1, 4);          // PT_LOAD
    put(64 + 4, 5, 4);      // R+X
    put(64 + 8, 0, 8);      // p_offset
    put(64 + 16, 0x1000000, 8);
    put(64 + 24, 0x1000000, 8);
    put(64 + 32, 4096, 8);  // p_filesz
    put(64 + 40, 4096, 8);  // p_memsz
    put(64 + 48, 4096, 8);  // p_align
    return elf;
}

TEST_CASE("an ELF without a PVH note is a one-line error", "[cli]") {
    const auto dir = scratch_dir();
    const auto vmlinux = write_file(dir, "vmlinux", elf_without_pvh_note());
    require_one_line_error(run_keel({"run", "--kernel", vmlinux}), "PVH");
    // A shared object is no kernel either, and says so.
    require_one_line_error(run_keel({"run", "--kernel", "/bin/true"}), "/bin/true");
}

TEST_CASE("impossible sizes and counts are one-line errors", "[cli]") {
    const auto guest = stock_guest();
    require_one_line_error(run_keel({"run", "--kernel", guest.kernel, "--memory", "0"}), "--memory");
    require_one_line_error(run_keel({"run", "--kernel", guest.kernel, "--memory", "1T"}), "more than this host's memory");
    require_one_line_error(run_keel({"run", "--kernel", guest.kernel, "--memory", "lots"}), "--memory");
    require_one_line_error(run_keel({"run", "--kernel", guest.kernel, "--cpus", "0"}), "--cpus");
    require_one_line_error(run_keel({"run", "--kernel", guest.kernel, "--cpus", "1000"}), "--cpus");
}

TEST_CASE("a huge-page pool too small or memory not in 2 MiB steps is a one-line error with --hugepages", "[cli]") {
    const auto guest = stock_guest();
    require_one_line_error(run_keel({"run", "--kernel", guest.kernel, "--hugepages", "--memory", "255M"}),
                           "must be a multiple of 2 MiB with --hugepages");
    const uint64_t free_pages = read_number_file("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
    if (read_number_file("/proc/sys/vm/nr_overcommit_hugepages") != 0 || free_pages > 1024) {
        WARN("this host's huge-page pool is large or may overcommit: the short pool is not checked here");
        return;
    }
    const std::string memory = std::to_string((free_pages + 8) * 2) + "M";
    const auto r = run_keel({"run", "--kernel", guest.kernel, "--hugepages", "--memory", memory});
    require_one_line_error(r, "of guest memory with 2 MiB huge pages");
    CHECK(r.err.find("sysctl vm.nr_hugepages=") != std::string::npos);
}

TEST_CASE("an initrd larger than guest memory is a one-line error", "[cli]") {
    const auto guest = stock_guest();
    const auto dir = scratch_dir();
    const std::string big = dir + "/big-initrd";
    std::ofstream(big).close();
    std::filesystem::resize_file(big, 300ull << 20);  // sparse
    require_one_line_error(run_keel({"run", "--kernel", guest.kernel, "--initrd", big, "--memory", "256M"}),
                           "does not fit");
}

TEST_CASE("an unknown flag is a one-line error", "[cli]") {
    require_one_line_error(run_keel({"run", "--kernel", "x", "--frobnicate"}), "--frobnicate");
    require_one_line_error(run_keel({"--frobnicate"}), "--frobnicate");
}

TEST_CASE("the version and the run help say what keel is", "[cli]") {
    const auto version = run_keel({"--version"});
    CHECK(version.exit_code == 0);
    CHECK(version.out.rfind("keel ", 0) == 0);
    const auto help = run_keel({"run", "--help"});
    CHECK(help.exit_code == 0);
    CHECK(help.out.find("--kernel") != std::string::npos);
    CHECK(help.out.find("--memory") != std::string::npos);
    CHECK(help.out.find("Ctrl-A x") != std::string::npos);
}

TEST_CASE("a missing disk image is a one-line error naming it", "[cli]") {
    require_one_line_error(run_keel({"run", "--kernel", "/nonexistent/bzImage", "--disk", "path=/nonexistent/disk.img"}),
                           "/nonexistent/disk.img");
}

TEST_CASE("a malformed --disk value is a one-line error naming the key", "[cli]") {
    const auto dir = scratch_dir();
    const auto image = write_file(dir, "disk.img", std::string(4096, '\0'));
    require_one_line_error(run_keel({"run", "--kernel", "/nonexistent/bzImage", "--disk", "path=" + image + ",size=1G"}),
                           "size");
    require_one_line_error(run_keel({"run", "--kernel", "/nonexistent/bzImage", "--disk", "readonly=on"}), "path");
    require_one_line_error(
        run_keel({"run", "--kernel", "/nonexistent/bzImage", "--disk", "path=" + image + ",readonly=maybe"}),
        "readonly");
}

TEST_CASE("two disks with one id, or one image twice, are one-line errors", "[cli]") {
    const auto dir = scratch_dir();
    const auto a = write_file(dir, "a.img", std::string(4096, '\0'));
    const auto b = write_file(dir, "b.img", std::string(4096, '\0'));
    require_one_line_error(run_keel({"run", "--kernel", "/nonexistent/bzImage", "--disk", "path=" + a + ",id=x",
                                     "--disk", "path=" + b + ",id=x"}),
                           "id=x");
    require_one_line_error(
        run_keel({"run", "--kernel", "/nonexistent/bzImage", "--disk", "path=" + a, "--disk", "path=" + a}),
        "twice");
}

TEST_CASE("an unknown --transport is a one-line error", "[cli]") {
    require_one_line_error(run_keel({"run", "--kernel", "/nonexistent/bzImage", "--transport", "isa"}), "--transport");
}

TEST_CASE("a disk image another process holds locked is a one-line error", "[cli]") {
    const auto dir = scratch_dir();
    const auto image = write_file(dir, "locked.img", std::string(4096, '\0'));
    // What a running keel holds on its writable images: an OFD write lock.
    const int fd = open(image.c_str(), O_RDWR | O_CLOEXEC);
    REQUIRE(fd >= 0);
    struct flock lock {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    REQUIRE(fcntl(fd, F_OFD_SETLK, &lock) == 0);
    require_one_line_error(run_keel({"run", "--kernel", "/nonexistent/bzImage", "--disk", "path=" + image}), "in use");
    // A read-only open is refused as well: the other process may be writing.
    require_one_line_error(
        run_keel({"run", "--kernel", "/nonexistent/bzImage", "--disk", "path=" + image + ",readonly=on"}), "in use");
    close(fd);
}

TEST_CASE("a TAP that does not exist, without the privilege to create it, is a one-line error", "[cli]") {
    // keel as root would create the TAP; without CAP_NET_ADMIN it may not.
    std::vector<std::string> args{"run", "--kernel", "/nonexistent/bzImage", "--net", "tap=keel-nosuch0"};
    if (geteuid() == 0) {
        args.insert(args.begin(), {"/usr/bin/setpriv", "--bounding-set=-all", "--inh-caps=-all", "--", keel_binary()});
        ProcessOptions options;
        options.timeout = std::chrono::seconds(60);
        require_one_line_error(run_process(args, options), "keel-nosuch0");
    } else {
        require_one_line_error(run_keel(args), "keel-nosuch0");
    }
}

TEST_CASE("a malformed --net value is a one-line error naming the key", "[cli]") {
    require_one_line_error(run_keel({"run", "--kernel", "/nonexistent/bzImage", "--net", "tap=t0,mac=02:00:00:00:00"}),
                           "mac=");
    require_one_line_error(
        run_keel({"run", "--kernel", "/nonexistent/bzImage", "--net", "tap=t0,mac=01:00:5e:00:00:01"}), "multicast");
    require_one_line_error(run_keel({"run", "--kernel", "/nonexistent/bzImage", "--net", "mac=02:00:00:00:00:01"}),
                           "tap=");
    require_one_line_error(run_keel({"run", "--kernel", "/nonexistent/bzImage", "--net", "tap=t0,speed=10G"}), "speed");
    require_one_line_error(run_keel({"run", "--kernel", "/nonexistent/bzImage", "--net", "fd=-3"}), "fd=");
}

TEST_CASE("two NICs with one id, TAP or MAC are one-line errors", "[cli]") {
    require_one_line_error(run_keel({"run", "--kernel", "/nonexistent/bzImage", "--net", "tap=t0,id=x", "--net",
                                     "tap=t1,id=x"}),
                           "id=x");
    require_one_line_error(
        run_keel({"run", "--kernel", "/nonexistent/bzImage", "--net", "tap=t0", "--net", "tap=t0"}), "twice");
    require_one_line_error(run_keel({"run", "--kernel", "/nonexistent/bzImage", "--net", "tap=t0,mac=02:00:00:00:00:01",
                                     "--net", "tap=t1,mac=02:00:00:00:00:01"}),
                           "MAC");
}

TEST_CASE("a --net fd that is no TAP is a one-line error", "[cli]") {
    // stdin is a pipe here: open, but no TAP.
    require_one_line_error(run_keel({"run", "--kernel", "/nonexistent/bzImage", "--net", "fd=0"}), "not a TAP");
    require_one_line_error(run_keel({"run", "--kernel", "/nonexistent/bzImage", "--net", "fd=999"}),
                           "not an open file descriptor");
}

TEST_CASE("keel bench boot names the run that failed and why, in one line", "[cli]") {
    const auto r = run_keel({"bench", "boot", "--runs", "2", "--kernel", "/nonexistent/bzImage"});
    require_one_line_error(r, "run 1 of 2 failed, exit status 1: cannot open kernel image '/nonexistent/bzImage'");
    CHECK(r.err.find("(log: ") != std::string::npos);
    require_one_line_error(run_keel({"bench", "boot", "--runs", "0", "--kernel", "k"}), "--runs takes a number");
    require_one_line_error(run_keel({"bench", "warp"}), "unknown benchmark 'warp'");
}

TEST_CASE("keel bench compare refuses an initrd without the payload, in one line", "[cli]") {
    // Only the container needs the initrd unpacked: that happens before any
    // run, so the missing payload is named at once. README.md is no archive.
    const std::string file = std::string(KEEL_SOURCE_DIR) + "/README.md";
    if (::geteuid() == 0 && ::access("/usr/bin/crun", X_OK) == 0) {  // else crun's own prerequisite is the error
        require_one_line_error(run_keel({"bench", "compare", "--kernel", file, "--initrd", file, "--systems", "crun",
                                         "--no-strace", "--runs", "1"}),
                               "cannot read the initrd");
    }
    require_one_line_error(run_keel({"bench", "compare", "--kernel", file, "--initrd", "/nonexistent/initrd"}),
                           "initrd");
}

TEST_CASE("a config file that is not Firecracker's format is a one-line error naming the file and field", "[cli]") {
    const auto dir = scratch_dir();
    const auto kernel = write_file(dir, "vmlinux", "not a kernel");
    require_one_line_error(run_keel({"run", "--config-file", dir + "/missing.json"}),
                           "cannot open config file '" + dir + "/missing.json'");
    const auto bad_field = write_file(
        dir, "bad.json",
        R"({"boot-source": {"kernel_image_path": ")" + kernel + R"("}, "drives": [], "machine-config": {"vcpu_count": "2", "mem_size_mib": 128}})");
    require_one_line_error(run_keel({"run", "--config-file", bad_field}),
                           "config file '" + bad_field +
                               "': machine-config: invalid type: string \"2\", expected u8");
    require_one_line_error(run_keel({"run", "--config-file", bad_field, "--kernel", kernel}), "excludes");
    // A well-formed file whose kernel is no kernel: the loader's own error.
    const auto not_kernel =
        write_file(dir, "vm.json", R"({"boot-source": {"kernel_image_path": ")" + kernel + R"("}, "drives": []})");
    require_one_line_error(run_keel({"run", "--config-file", not_kernel}), kernel);
}
