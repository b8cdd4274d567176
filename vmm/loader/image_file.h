#pragma once

// Opening the files a user names (kernel, initrd) with one-line, actionable errors.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"

namespace keel {

struct OpenedFile {
    UniqueFd fd;
    uint64_t size = 0;
};

// Opens `path` read-only and checks it is a regular file. Errors read
// "cannot open kernel image 'x': No such file or directory" (`what` = "kernel image").
[[nodiscard]] OpenedFile open_regular_file(const std::string& path, std::string_view what);

// Reads the whole file into memory; refuses files larger than `max_size`.
[[nodiscard]] std::vector<uint8_t> read_whole_file(const std::string& path, std::string_view what,
                                                   uint64_t max_size);

// Reads exactly dst_size bytes at `offset` into `dst`; a short read (the file
// shrank under us) is an error naming `what` and `path`.
void read_exact(const OpenedFile& file, void* dst, uint64_t dst_size, uint64_t offset,
                std::string_view what, const std::string& path);

}  // namespace keel
