#include "memory/guest_memory.h"

#include <linux/mman.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <utility>

#include "common/error.h"
#include "common/units.h"

namespace keel {

namespace {

constexpr uint64_t kPageSize = 4096;

void validate(const std::vector<MemoryRegionSpec>& specs, uint64_t alignment) {
    if (specs.empty()) throw Error("guest memory: no regions");
    std::vector<MemoryRegionSpec> sorted = specs;
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.start < b.start; });
    for (size_t i = 0; i < sorted.size(); ++i) {
        const auto& r = sorted[i];
        if (r.size == 0 || r.size % alignment != 0 || r.start.value % alignment != 0) {
            throw Error("guest memory: region at " + std::to_string(r.start.value) + " of " + format_size(r.size) +
                        " is empty or not aligned to " + format_size(alignment));
        }
        if (!r.start.checked_add(r.size)) throw Error("guest memory: region wraps the address space");
        if (i > 0 && sorted[i - 1].start.value + sorted[i - 1].size > r.start.value) {
            throw Error("guest memory: regions overlap");
        }
    }
}

uint64_t read_pool_count(const char* name) {
    std::ifstream file(std::string("/sys/kernel/mm/hugepages/hugepages-2048kB/") + name);
    uint64_t count = 0;
    return file >> count ? count : 0;
}

// Not MAP_NORESERVE: the pages are reserved from the pool now, so a pool too
// small is a clear error at start instead of a SIGBUS when the guest first
// touches a page the pool cannot give (which is how Firecracker documents it).
void* map_hugetlb(uint64_t size, uint64_t total) {
    void* host =
        ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
    if (host != MAP_FAILED) return host;
    const int error = errno;
    const uint64_t needed = total / kHugePageSize;
    const uint64_t pool = read_pool_count("nr_hugepages");
    throw Error("cannot back " + format_size(total) + " of guest memory with 2 MiB huge pages: " +
                std::strerror(error) + " (it needs " + std::to_string(needed) + "; the host's pool has " +
                std::to_string(read_pool_count("free_hugepages")) + " free of " + std::to_string(pool) +
                "; as root: sysctl vm.nr_hugepages=" + std::to_string(pool + needed) + ")");
}

}  // namespace

const char* page_backing_name(GuestPageBacking backing) {
    switch (backing) {
        case GuestPageBacking::Normal:
            return "4 KiB pages";
        case GuestPageBacking::Hugetlb2M:
            return "2 MiB huge pages";
        case GuestPageBacking::Transparent:
            return "transparent huge pages";
    }
    return "?";
}

GuestMemory GuestMemory::create(const std::vector<MemoryRegionSpec>& specs, GuestPageBacking backing) {
    validate(specs, backing == GuestPageBacking::Hugetlb2M ? kHugePageSize : kPageSize);
    GuestMemory memory;
    memory.m_backing = backing;
    uint64_t total = 0;
    for (const auto& spec : specs) total += spec.size;
    for (const auto& spec : specs) {
        void* host = nullptr;
        if (backing == GuestPageBacking::Hugetlb2M) {
            host = map_hugetlb(spec.size, total);
        } else {
            // MAP_NORESERVE: guest RAM is touched lazily; the host commits only
            // pages the guest actually uses, which is what keel reports as cost.
            host =
                ::mmap(nullptr, spec.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (host == MAP_FAILED) throw_errno("cannot map " + format_size(spec.size) + " of guest memory");
        }
        memory.m_regions.push_back({spec.start, spec.size, static_cast<uint8_t*>(host)});
        if (backing == GuestPageBacking::Transparent && ::madvise(host, spec.size, MADV_HUGEPAGE) != 0) {
            throw_errno(
                "cannot ask for transparent huge pages for guest memory (madvise MADV_HUGEPAGE; is "
                "/sys/kernel/mm/transparent_hugepage there?)");
        }
        // Guest RAM must not be copied into a forked child (e.g. a helper process).
        ::madvise(host, spec.size, MADV_DONTFORK);
    }
    std::sort(memory.m_regions.begin(), memory.m_regions.end(),
              [](const auto& a, const auto& b) { return a.start < b.start; });
    return memory;
}

GuestMemory::GuestMemory(GuestMemory&& other) noexcept
    : m_regions(std::exchange(other.m_regions, {})), m_backing(other.m_backing) {}

GuestMemory& GuestMemory::operator=(GuestMemory&& other) noexcept {
    if (this != &other) {
        unmap_all();
        m_regions = std::exchange(other.m_regions, {});
        m_backing = other.m_backing;
    }
    return *this;
}

GuestMemory::~GuestMemory() {
    unmap_all();
}

void GuestMemory::unmap_all() {
    for (const auto& r : m_regions) ::munmap(r.host, r.size);
    m_regions.clear();
}

uint64_t GuestMemory::total_size() const {
    uint64_t total = 0;
    for (const auto& r : m_regions) total += r.size;
    return total;
}

const GuestMemoryRegion* GuestMemory::find(Gpa gpa, uint64_t len) const {
    for (const auto& r : m_regions) {
        if (r.contains(gpa, len)) return &r;
    }
    return nullptr;
}

std::optional<VolatileSlice> GuestMemory::slice(Gpa gpa, uint64_t len) const {
    const auto* region = find(gpa, len);
    if (region == nullptr) return std::nullopt;
    return VolatileSlice(region->host + (gpa.value - region->start.value), static_cast<size_t>(len));
}

bool GuestMemory::populate_for_write(Gpa gpa, uint64_t len) const {
    const auto* region = find(gpa, len);
    if (region == nullptr || len == 0) return false;
    const uint64_t page = m_backing == GuestPageBacking::Hugetlb2M ? kHugePageSize : kPageSize;
    const uint64_t first = (gpa.value - region->start.value) / page * page;
    const uint64_t last = std::min(region->size, (gpa.value - region->start.value + len + page - 1) / page * page);
    return ::madvise(region->host + first, last - first, MADV_POPULATE_WRITE) == 0;
}

bool GuestMemory::read(Gpa gpa, std::span<uint8_t> dst) const {
    const auto s = slice(gpa, dst.size());
    if (!s) return false;
    s->copy_to(dst);
    return true;
}

bool GuestMemory::write(Gpa gpa, std::span<const uint8_t> src) const {
    const auto s = slice(gpa, src.size());
    if (!s) return false;
    s->copy_from(src);
    return true;
}

// The __atomic builtins act on the host mapping directly: the bytes have no
// C++ object type, and the guest's vCPUs access the same location.
std::optional<uint16_t> GuestMemory::load_acquire_u16(Gpa gpa) const {
    const auto* region = find(gpa, sizeof(uint16_t));
    if (region == nullptr || gpa.value % alignof(uint16_t) != 0) return std::nullopt;
    const auto* host = reinterpret_cast<const uint16_t*>(region->host + (gpa.value - region->start.value));
    return __atomic_load_n(host, __ATOMIC_ACQUIRE);
}

bool GuestMemory::store_release_u16(Gpa gpa, uint16_t value) const {
    const auto* region = find(gpa, sizeof(uint16_t));
    if (region == nullptr || gpa.value % alignof(uint16_t) != 0) return false;
    auto* host = reinterpret_cast<uint16_t*>(region->host + (gpa.value - region->start.value));
    __atomic_store_n(host, value, __ATOMIC_RELEASE);
    return true;
}

void GuestMemory::write_or_throw(Gpa gpa, std::span<const uint8_t> src, const std::string& what) const {
    if (!write(gpa, src)) {
        throw Error(what + " (" + std::to_string(src.size()) + " bytes at guest address 0x" + [&] {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(gpa.value));
            return std::string(buf);
        }() + ") does not fit in guest memory");
    }
}

}  // namespace keel
