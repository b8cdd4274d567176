#include "virtio/block/disk_options.h"

#include <linux/virtio_blk.h>

#include <array>
#include <string>

#include "common/error.h"
#include "common/option_list.h"

namespace keel::block {
namespace {

constexpr std::array kKeys{std::string_view{"path"}, std::string_view{"readonly"}, std::string_view{"id"},
                           std::string_view{"serial"}, std::string_view{"io"}};
[[noreturn]] void fail(const std::string& message) {
    throw Error("--disk: " + message);
}

bool printable_ascii(std::string_view text) {
    for (const char c : text) {
        if (c < 0x20 || c > 0x7e) return false;
    }
    return true;
}

void apply(DiskOptions& options, std::string_view key, std::string_view value) {
    if (key == "path") {
        options.path = value;
    } else if (key == "readonly") {
        if (value == "on") {
            options.access = DiskAccess::ReadOnly;
        } else if (value == "off") {
            options.access = DiskAccess::ReadWrite;
        } else {
            fail("readonly=" + std::string(value) + " is not on or off");
        }
    } else if (key == "id") {
        if (!is_valid_device_id(value)) fail("id=" + std::string(value) + " must be 1-32 characters of A-Z a-z 0-9 _ -");
        options.id = value;
    } else if (key == "serial") {
        // virtio 1.2 §5.2.6: GET_ID returns at most VIRTIO_BLK_ID_BYTES of ASCII.
        if (value.size() > VIRTIO_BLK_ID_BYTES || !printable_ascii(value)) {
            fail("serial=" + std::string(value) + " must be at most " + std::to_string(VIRTIO_BLK_ID_BYTES) +
                 " printable ASCII characters");
        }
        options.serial = value;
    } else if (key == "io") {
        if (value == "uring") {
            options.io = DiskIoEngine::Uring;
        } else if (value == "sync") {
            options.io = DiskIoEngine::Sync;
        } else {
            fail("io=" + std::string(value) + " is not uring or sync");
        }
    }
}

}  // namespace

std::string_view to_string(DiskIoEngine engine) {
    switch (engine) {
        case DiskIoEngine::Uring:
            return "uring";
        case DiskIoEngine::Sync:
            return "sync";
    }
    return "unknown";
}

DiskOptions parse_disk_option(std::string_view text) {
    DiskOptions options;
    for (const auto& [key, value] : split_option_list(text, "--disk", kKeys)) apply(options, key, value);
    if (options.path.empty()) fail("path=FILE is required");
    return options;
}

}  // namespace keel::block
