#include "loader/image_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "common/error.h"
#include "loader/format.h"

namespace keel {

namespace {

std::string quoted(std::string_view what, const std::string& path) {
    return std::string(what) + " '" + path + "'";
}

}  // namespace

OpenedFile open_regular_file(const std::string& path, std::string_view what) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) throw_errno("cannot open " + quoted(what, path));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw_errno("cannot stat " + quoted(what, path));
    if (!S_ISREG(st.st_mode)) throw Error(quoted(what, path) + " is not a regular file");
    return OpenedFile{std::move(fd), static_cast<uint64_t>(st.st_size)};
}

void read_exact(const OpenedFile& file, void* dst, uint64_t dst_size, uint64_t offset,
                std::string_view what, const std::string& path) {
    auto* out = static_cast<uint8_t*>(dst);
    uint64_t done = 0;
    while (done < dst_size) {
        const ssize_t n = ::pread(file.fd.get(), out + done, dst_size - done,
                                  static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("cannot read " + quoted(what, path));
        if (n == 0) {
            throw Error(quoted(what, path) + " ended after " + std::to_string(offset + done) +
                        " bytes while reading; was it changed while keel started?");
        }
        done += static_cast<uint64_t>(n);
    }
}

FileBytes::FileBytes(uint64_t size) : m_size(static_cast<size_t>(size)) {
    if (m_size == 0) return;
    void* data = ::mmap(nullptr, m_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (data == MAP_FAILED) throw_errno("cannot map " + approx_size(size) + " to read a file into");
    m_data = static_cast<uint8_t*>(data);
}

FileBytes::FileBytes(FileBytes&& other) noexcept
    : m_data(std::exchange(other.m_data, nullptr)), m_size(std::exchange(other.m_size, 0)) {}

FileBytes& FileBytes::operator=(FileBytes&& other) noexcept {
    if (this != &other) {
        if (m_data != nullptr) ::munmap(m_data, m_size);
        m_data = std::exchange(other.m_data, nullptr);
        m_size = std::exchange(other.m_size, 0);
    }
    return *this;
}

FileBytes::~FileBytes() {
    if (m_data != nullptr) ::munmap(m_data, m_size);
}

FileBytes read_whole_file(const std::string& path, std::string_view what, uint64_t max_size) {
    OpenedFile file = open_regular_file(path, what);
    if (file.size > max_size) {
        throw Error(quoted(what, path) + " is " + approx_size(file.size) + ", more than the " +
                    format_size(max_size) + " keel accepts");
    }
    FileBytes bytes(file.size);
    read_exact(file, bytes.data(), bytes.size(), 0, what, path);
    return bytes;
}

}  // namespace keel
