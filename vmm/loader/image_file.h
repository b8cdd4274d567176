#pragma once

// Opening the files a user names (kernel, initrd) with one-line, actionable errors.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/fd.h"

namespace keel {

struct OpenedFile {
    UniqueFd fd;
    uint64_t size = 0;
};

// Opens `path` read-only and checks it is a regular file. Errors read
// "cannot open kernel image 'x': No such file or directory" (`what` = "kernel image").
[[nodiscard]] OpenedFile open_regular_file(const std::string& path, std::string_view what);

// A whole file's bytes in memory of their own, mapped populated: one call
// gives every page, where a zero-filled vector took a fault per 4 KiB page
// and wrote each byte twice.
class FileBytes {
public:
    FileBytes() = default;
    explicit FileBytes(uint64_t size);
    FileBytes(FileBytes&& other) noexcept;
    FileBytes& operator=(FileBytes&& other) noexcept;
    FileBytes(const FileBytes&) = delete;
    FileBytes& operator=(const FileBytes&) = delete;
    ~FileBytes();

    [[nodiscard]] uint8_t* data() { return m_data; }
    [[nodiscard]] const uint8_t* data() const { return m_data; }
    [[nodiscard]] size_t size() const { return m_size; }
    [[nodiscard]] const uint8_t* begin() const { return m_data; }
    [[nodiscard]] const uint8_t* end() const { return m_data + m_size; }
    operator std::span<const uint8_t>() const { return {m_data, m_size}; }  // NOLINT(google-explicit-constructor)

private:
    uint8_t* m_data = nullptr;
    size_t m_size = 0;
};

// Reads the whole file into memory; refuses files larger than `max_size`.
[[nodiscard]] FileBytes read_whole_file(const std::string& path, std::string_view what, uint64_t max_size);

// Reads exactly dst_size bytes at `offset` into `dst`; a short read (the file
// shrank under us) is an error naming `what` and `path`.
void read_exact(const OpenedFile& file, void* dst, uint64_t dst_size, uint64_t offset,
                std::string_view what, const std::string& path);

}  // namespace keel
