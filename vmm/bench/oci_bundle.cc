#include "bench/oci_bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <memory>

#include "common/error.h"

namespace keel::bench {

nlohmann::json oci_config(const std::string& payload) {
    using nlohmann::json;
    const json capabilities = json::array({"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"});
    json config;
    config["ociVersion"] = "1.0.2";
    config["process"] = {
        {"terminal", false},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", json::array({payload})},
        {"env", json::array({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm",
                             "KEEL_BENCH_CONTAINER=1"})},
        {"cwd", "/"},
        {"capabilities", {{"bounding", capabilities}, {"effective", capabilities}, {"permitted", capabilities}}},
        {"rlimits", json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}})},
        {"noNewPrivileges", true},
    };
    config["root"] = {{"path", "rootfs"}, {"readonly", true}};
    config["hostname"] = "keel-bench";
    config["mounts"] = json::array({
        {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
        {{"destination", "/dev"},
         {"type", "tmpfs"},
         {"source", "tmpfs"},
         {"options", json::array({"nosuid", "strictatime", "mode=755", "size=65536k"})}},
        {{"destination", "/dev/pts"},
         {"type", "devpts"},
         {"source", "devpts"},
         {"options", json::array({"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"})}},
        {{"destination", "/dev/shm"},
         {"type", "tmpfs"},
         {"source", "shm"},
         {"options", json::array({"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"})}},
        {{"destination", "/dev/mqueue"},
         {"type", "mqueue"},
         {"source", "mqueue"},
         {"options", json::array({"nosuid", "noexec", "nodev"})}},
        {{"destination", "/sys"},
         {"type", "sysfs"},
         {"source", "sysfs"},
         {"options", json::array({"nosuid", "noexec", "nodev", "ro"})}},
        {{"destination", "/sys/fs/cgroup"},
         {"type", "cgroup"},
         {"source", "cgroup"},
         {"options", json::array({"nosuid", "noexec", "nodev", "relatime", "ro"})}},
    });
    config["linux"] = {
        {"resources", {{"devices", json::array({{{"allow", false}, {"access", "rwm"}}})}}},
        {"namespaces", json::array({{{"type", "pid"}},
                                    {{"type", "network"}},
                                    {{"type", "ipc"}},
                                    {{"type", "uts"}},
                                    {{"type", "mount"}},
                                    {{"type", "cgroup"}}})},
        {"maskedPaths",
         json::array({"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                      "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"})},
        {"readonlyPaths", json::array({"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"})},
    };
    return config;
}

namespace {

struct ArchiveReadDeleter {
    void operator()(archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteDeleter {
    void operator()(archive* a) const { archive_write_free(a); }
};

}  // namespace

void unpack_initrd(const std::string& initrd, const std::string& rootfs) {
    std::unique_ptr<archive, ArchiveReadDeleter> reader(archive_read_new());
    std::unique_ptr<archive, ArchiveWriteDeleter> writer(archive_write_disk_new());
    if (!reader || !writer) throw Error("cannot unpack '" + initrd + "': out of memory");
    archive_read_support_filter_all(reader.get());
    archive_read_support_format_cpio(reader.get());
    archive_write_disk_set_options(writer.get(), ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                                                     ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS);
    if (archive_read_open_filename(reader.get(), initrd.c_str(), 64 * 1024) != ARCHIVE_OK) {
        throw Error("cannot read the initrd '" + initrd + "': " + archive_error_string(reader.get()));
    }
    unsigned files = 0;
    for (;;) {
        archive_entry* entry = nullptr;
        const int status = archive_read_next_header(reader.get(), &entry);
        if (status == ARCHIVE_EOF) break;
        if (status != ARCHIVE_OK && status != ARCHIVE_WARN) {
            throw Error("cannot unpack the initrd '" + initrd + "': " + archive_error_string(reader.get()));
        }
        const auto type = archive_entry_filetype(entry);
        if (type == AE_IFCHR || type == AE_IFBLK) continue;
        const std::string name = archive_entry_pathname(entry);
        if (name == "." || name == "./") continue;
        // Every name is put under rootfs (an absolute one too); ".." and
        // extracting through a symbolic link are refused by the writer.
        archive_entry_set_pathname(entry, (rootfs + "/" + name).c_str());
        if (const char* hardlink = archive_entry_hardlink(entry); hardlink != nullptr) {
            archive_entry_set_hardlink(entry, (rootfs + "/" + hardlink).c_str());
        }
        if (archive_write_header(writer.get(), entry) != ARCHIVE_OK) {
            throw Error("cannot unpack '" + name + "' of the initrd '" + initrd + "' into '" + rootfs +
                        "': " + archive_error_string(writer.get()));
        }
        const void* block = nullptr;
        size_t size = 0;
        la_int64_t offset = 0;
        for (;;) {
            const int read = archive_read_data_block(reader.get(), &block, &size, &offset);
            if (read == ARCHIVE_EOF) break;
            if (read != ARCHIVE_OK || archive_write_data_block(writer.get(), block, size, offset) != ARCHIVE_OK) {
                throw Error("cannot unpack '" + name + "' of the initrd '" + initrd + "'");
            }
        }
        if (archive_write_finish_entry(writer.get()) != ARCHIVE_OK) {
            throw Error("cannot unpack '" + name + "' of the initrd '" + initrd +
                        "': " + archive_error_string(writer.get()));
        }
        ++files;
    }
    if (files == 0) throw Error("the initrd '" + initrd + "' holds no files (is it a cpio archive?)");
}

}  // namespace keel::bench
