#pragma once

#include <cstdint>
#include <ctime>

namespace keel {

// CLOCK_MONOTONIC in nanoseconds.
inline uint64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// The first instant keel's own code ran (static initialisation, before main).
// The kernel's own process start time (/proc/self/stat) only has 10 ms
// resolution — too coarse for phases of a few milliseconds; `keel bench`
// measures exec-to-start from outside instead.
uint64_t process_start_ns();

}  // namespace keel
