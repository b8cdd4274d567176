#include "kvm/kvm_stats.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/fd.h"
#include "common/kvm_uapi.h"

namespace keel {

namespace {

template <typename T>
bool read_at(std::span<const uint8_t> image, uint64_t offset, T& out) {
    if (offset > image.size() || image.size() - offset < sizeof(T)) return false;
    std::memcpy(&out, image.data() + offset, sizeof(T));
    return true;
}

}  // namespace

std::map<std::string, uint64_t> parse_kvm_stats(std::span<const uint8_t> image) {
    std::map<std::string, uint64_t> counters;
    kvm_stats_header header{};
    if (!read_at(image, 0, header) || header.name_size == 0 || header.name_size > 4096) return counters;
    const uint64_t desc_size = sizeof(kvm_stats_desc) + header.name_size;
    for (uint32_t i = 0; i < header.num_desc; ++i) {
        const uint64_t at = header.desc_offset + i * desc_size;
        kvm_stats_desc desc{};
        if (!read_at(image, at, desc) || image.size() - at < desc_size) break;
        if ((desc.flags & KVM_STATS_TYPE_MASK) != KVM_STATS_TYPE_CUMULATIVE || desc.size != 1) continue;
        const auto* name_bytes = reinterpret_cast<const char*>(image.data() + at + sizeof(kvm_stats_desc));
        const std::string name(name_bytes, strnlen(name_bytes, header.name_size));
        uint64_t value = 0;
        if (read_at(image, uint64_t{header.data_offset} + desc.offset, value)) counters[name] = value;
    }
    return counters;
}

std::map<std::string, uint64_t> read_kvm_stats(int object_fd) {
    UniqueFd fd(::ioctl(object_fd, KVM_GET_STATS_FD, nullptr));
    if (!fd.valid()) return {};
    kvm_stats_header header{};
    if (::pread(fd.get(), &header, sizeof header, 0) != static_cast<ssize_t>(sizeof header)) return {};
    // Descriptors first, to learn how large the data block is.
    const uint64_t desc_end = header.desc_offset + uint64_t{header.num_desc} * (sizeof(kvm_stats_desc) + header.name_size);
    if (desc_end > (1u << 20)) return {};
    std::vector<uint8_t> image(desc_end);
    if (::pread(fd.get(), image.data(), image.size(), 0) != static_cast<ssize_t>(image.size())) return {};
    uint64_t data_end = header.data_offset;
    for (uint32_t i = 0; i < header.num_desc; ++i) {
        kvm_stats_desc desc{};
        std::memcpy(&desc, image.data() + header.desc_offset + i * (sizeof(kvm_stats_desc) + header.name_size),
                    sizeof desc);
        data_end = std::max<uint64_t>(data_end, header.data_offset + desc.offset + uint64_t{desc.size} * 8);
    }
    if (data_end > (1u << 20)) return {};
    image.resize(std::max<uint64_t>(image.size(), data_end));
    const ssize_t got = ::pread(fd.get(), image.data(), image.size(), 0);
    if (got <= 0) return {};
    image.resize(static_cast<size_t>(got));
    return parse_kvm_stats(image);
}

}  // namespace keel
