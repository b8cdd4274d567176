#include "virtio/block/disk_options.h"

#include <linux/virtio_blk.h>

#include <array>
#include <string>

#include "common/error.h"

namespace keel::block {
namespace {

constexpr std::array kKeys{std::string_view{"path"}, std::string_view{"readonly"}, std::string_view{"id"},
                           std::string_view{"serial"}, std::string_view{"io"}};
constexpr size_t kMaxIdLength = 32;

[[noreturn]] void fail(const std::string& message) {
    throw Error("--disk: " + message);
}

std::string quoted(std::string_view text) {
    return "'" + std::string(text) + "'";
}

bool valid_id(std::string_view id) {
    if (id.empty() || id.size() > kMaxIdLength) return false;
    for (const char c : id) {
        const bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
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
        if (!valid_id(value)) fail("id=" + std::string(value) + " must be 1-32 characters of A-Z a-z 0-9 _ -");
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
    std::array<bool, kKeys.size()> seen{};
    size_t start = 0;
    while (!text.empty()) {
        const size_t comma = text.find(',', start);
        const std::string_view item = text.substr(start, comma == std::string_view::npos ? comma : comma - start);
        if (item.empty()) fail("empty item (two commas in a row, or a comma at the end)");

        const size_t equals = item.find('=');
        if (equals == std::string_view::npos) fail(quoted(item) + " is not key=value (e.g. path=disk.img)");
        const std::string_view key = item.substr(0, equals);
        const std::string_view value = item.substr(equals + 1);

        size_t index = kKeys.size();
        for (size_t i = 0; i < kKeys.size(); ++i) {
            if (kKeys[i] == key) index = i;
        }
        if (index == kKeys.size()) fail("unknown key " + quoted(key) + " (expected path, readonly, id, serial, io)");
        if (seen[index]) fail("key " + quoted(key) + " given twice");
        seen[index] = true;
        if (value.empty()) fail(std::string(key) + "= needs a value");
        apply(options, key, value);
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    if (options.path.empty()) fail("path=FILE is required");
    return options;
}

}  // namespace keel::block
