#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace keel::block {

// How a disk's requests reach the host kernel (see disk_io.h).
enum class DiskIoEngine : uint8_t {
    Uring,  // io_uring: requests run asynchronously, completions on an eventfd
    Sync,   // preadv/pwritev/fdatasync on the event-loop thread
};

[[nodiscard]] std::string_view to_string(DiskIoEngine engine);

enum class DiskAccess : uint8_t { ReadWrite, ReadOnly };

// One `--disk path=FILE[,readonly=on|off][,id=NAME][,serial=STR][,io=uring|sync]`.
struct DiskOptions {
    std::string path;
    DiskAccess access = DiskAccess::ReadWrite;
    std::string id;      // [A-Za-z0-9_-]{1,32}; names the device in logs and stats
    std::string serial;  // printable ASCII, at most VIRTIO_BLK_ID_BYTES (20); the GET_ID answer
    DiskIoEngine io = DiskIoEngine::Uring;

    [[nodiscard]] bool read_only() const { return access == DiskAccess::ReadOnly; }
};

// Parses the value of one --disk option. Throws keel::Error with a one-line
// message naming the offending key for: no path, an item without '=', an
// empty value, an unknown or repeated key, a bad readonly/io value, an id
// outside [A-Za-z0-9_-]{1,32}, a serial longer than 20 bytes or not printable
// ASCII.
[[nodiscard]] DiskOptions parse_disk_option(std::string_view text);

}  // namespace keel::block
