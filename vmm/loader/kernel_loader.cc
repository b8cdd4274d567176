#include "loader/kernel_loader.h"

#include <elf.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>

#include "common/error.h"
#include "loader/bzimage.h"
#include "loader/elf_pvh.h"
#include "loader/image_file.h"

namespace keel {

namespace {

constexpr size_t kShownPrefixBytes = 8;

bool has_bytes_at(std::span<const uint8_t> image, size_t offset, const void* magic, size_t size) {
    return image.size() >= offset + size && std::memcmp(image.data() + offset, magic, size) == 0;
}

// 'starts with 23 21 2f 62 69 6e 2f 73 "#!/bin/s"': hex always, text when it is text.
std::string describe_prefix(std::span<const uint8_t> image) {
    const auto prefix = image.first(std::min(image.size(), kShownPrefixBytes));
    std::string hex;
    std::string text;
    bool printable = true;
    for (const uint8_t byte : prefix) {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%02x", byte);
        hex += (hex.empty() ? "" : " ") + std::string(buf);
        printable = printable && std::isprint(byte) != 0;
        text += static_cast<char>(byte);
    }
    return "starts with " + hex + (printable ? " \"" + text + "\"" : "");
}

}  // namespace

KernelFormat detect_kernel_format(std::span<const uint8_t> image) {
    if (has_bytes_at(image, 0, ELFMAG, SELFMAG)) return KernelFormat::Elf;
    const uint8_t boot_flag[] = {0x55, 0xaa};
    if (has_bytes_at(image, 0x1fe, boot_flag, sizeof boot_flag) || has_bytes_at(image, 0x202, "HdrS", 4)) {
        return KernelFormat::BzImage;
    }
    return KernelFormat::Unknown;
}

LoadedKernel load_kernel_image(std::span<const uint8_t> image, const GuestMemory& mem, const std::string& name) {
    if (image.empty()) throw Error("kernel image '" + name + "' is empty");
    switch (detect_kernel_format(image)) {
        case KernelFormat::BzImage:
            return load_bzimage(image, mem, name);
        case KernelFormat::Elf:
            return load_elf_pvh(image, mem, name);
        case KernelFormat::Unknown:
            break;
    }
    throw Error("kernel image '" + name + "' is neither a bzImage nor an ELF vmlinux (" + describe_prefix(image) +
                ")");
}

LoadedKernel load_kernel(const std::string& path, const GuestMemory& mem) {
    const FileBytes image = read_whole_file(path, "kernel image", kMaxKernelImageSize);
    return load_kernel_image(image, mem, path);
}

}  // namespace keel
