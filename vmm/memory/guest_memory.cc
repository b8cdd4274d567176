#include "memory/guest_memory.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#include "common/error.h"
#include "common/units.h"

namespace keel {

namespace {

constexpr uint64_t kPageSize = 4096;

void validate(const std::vector<MemoryRegionSpec>& specs) {
    if (specs.empty()) throw Error("guest memory: no regions");
    std::vector<MemoryRegionSpec> sorted = specs;
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.start < b.start; });
    for (size_t i = 0; i < sorted.size(); ++i) {
        const auto& r = sorted[i];
        if (r.size == 0 || r.size % kPageSize != 0 || r.start.value % kPageSize != 0) {
            throw Error("guest memory: region at " + std::to_string(r.start.value) +
                        " is empty or not page-aligned");
        }
        if (!r.start.checked_add(r.size)) throw Error("guest memory: region wraps the address space");
        if (i > 0 && sorted[i - 1].start.value + sorted[i - 1].size > r.start.value) {
            throw Error("guest memory: regions overlap");
        }
    }
}

}  // namespace

GuestMemory GuestMemory::create(const std::vector<MemoryRegionSpec>& specs) {
    validate(specs);
    GuestMemory memory;
    for (const auto& spec : specs) {
        // MAP_NORESERVE: guest RAM is touched lazily; the host commits only
        // pages the guest actually uses, which is what keel reports as cost.
        void* host = ::mmap(nullptr, spec.size, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (host == MAP_FAILED) {
            throw_errno("cannot map " + format_size(spec.size) + " of guest memory");
        }
        // Guest RAM must not be copied into a forked child (e.g. a helper process).
        ::madvise(host, spec.size, MADV_DONTFORK);
        memory.m_regions.push_back({spec.start, spec.size, static_cast<uint8_t*>(host)});
    }
    std::sort(memory.m_regions.begin(), memory.m_regions.end(),
              [](const auto& a, const auto& b) { return a.start < b.start; });
    return memory;
}

GuestMemory::GuestMemory(GuestMemory&& other) noexcept
    : m_regions(std::exchange(other.m_regions, {})) {}

GuestMemory& GuestMemory::operator=(GuestMemory&& other) noexcept {
    if (this != &other) {
        unmap_all();
        m_regions = std::exchange(other.m_regions, {});
    }
    return *this;
}

GuestMemory::~GuestMemory() { unmap_all(); }

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
        throw Error(what + " (" + std::to_string(src.size()) + " bytes at guest address 0x" +
                    [&] {
                        char buf[32];
                        std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(gpa.value));
                        return std::string(buf);
                    }() +
                    ") does not fit in guest memory");
    }
}

}  // namespace keel
