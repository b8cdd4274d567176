#pragma once

#include <sys/types.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "bench/child_process.h"
#include "bench/compare_setup.h"

// What `keel bench compare` and `keel bench density` share about running a
// system (keel, QEMU microvm, crun, runc) with the payload.
namespace keel::bench {

[[nodiscard]] inline double ms_between(uint64_t from_ns, uint64_t to_ns) {
    return static_cast<double>(to_ns - from_ns) / 1e6;
}

// Whether `program` is an executable file in one of $PATH's directories.
[[nodiscard]] bool program_in_path(const std::string& program);

// Everything the systems need before the first run (their programs, root for
// containers, strace when asked), so that a missing tool fails the bench at
// once with what to do, not in run 7. Throws keel::Error.
void check_systems_available(const std::vector<std::string>& systems, bool strace);

// Unpacks the initrd into `bundle`/rootfs and writes `bundle`/config.json.
// Throws keel::Error when the initrd has no payload.
void prepare_bundle(const CompareSetup& setup, const std::string& bundle);

// A failed run leaves nothing behind: the process is killed, and a container
// is deleted by its runtime (which kills the payload too).
void abandon_run(pid_t pid, const std::string& system, const std::string& container_id);

// The console (or stdout) of a run: copied to a log file, searched for the
// marker as it arrives.
class ConsoleWatch {
public:
    ConsoleWatch(int fd, const std::string& log_path, std::string marker);

    enum class Result : uint8_t { Marker, End, Timeout, Nothing };

    // Reads what is there now without waiting: Marker when the marker has just
    // appeared (with `want_marker`), End when every writer is gone, else Nothing.
    Result read_available(bool want_marker, uint64_t& when_ns);

    // Reads until the marker appears (with `want_marker`), end of file, or the deadline.
    Result read_until(bool want_marker, uint64_t deadline_ns, uint64_t& when_ns);

    [[nodiscard]] int fd() const { return m_fd; }

private:
    int m_fd;
    std::ofstream m_log;
    std::string m_marker;
    std::string m_tail;
};

}  // namespace keel::bench
