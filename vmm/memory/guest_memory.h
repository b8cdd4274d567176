#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "memory/gpa.h"
#include "memory/volatile_slice.h"

namespace keel {

// How guest RAM is backed on the host. docs/architecture.md ("Guest memory")
// has what each costs and buys.
enum class GuestPageBacking : uint8_t {
    Normal,       // 4 KiB pages, populated lazily: the host pays for what the guest touches
    Hugetlb2M,    // 2 MiB hugetlbfs pages, reserved from the host's pool (vm.nr_hugepages) at start
    Transparent,  // 4 KiB mapping the host kernel may back with transparent huge pages
};

[[nodiscard]] const char* page_backing_name(GuestPageBacking backing);

inline constexpr uint64_t kHugePageSize = 2ULL * 1024 * 1024;

struct MemoryRegionSpec {
    Gpa start;
    uint64_t size = 0;
};

// One contiguous block of guest RAM backed by an anonymous host mapping.
struct GuestMemoryRegion {
    Gpa start;
    uint64_t size = 0;
    uint8_t* host = nullptr;

    [[nodiscard]] uint64_t end() const { return start.value + size; }  // exclusive
    [[nodiscard]] bool contains(Gpa gpa, uint64_t len) const {
        return gpa.value >= start.value && len <= size && gpa.value - start.value <= size - len;
    }
};

// The only way to touch guest RAM. Every access checks the whole range
// [gpa, gpa + len), which must lie inside one region; nothing outside guest
// RAM is ever reachable through it.
class GuestMemory {
public:
    // Maps anonymous memory for each region. Regions must be page-aligned (2 MiB
    // for Hugetlb2M), non-empty and must not overlap. Throws keel::Error; for
    // Hugetlb2M, when the host's pool cannot hold every region, with the pool's
    // state and how to grow it.
    static GuestMemory create(const std::vector<MemoryRegionSpec>& regions,
                              GuestPageBacking backing = GuestPageBacking::Normal);

    GuestMemory(GuestMemory&& other) noexcept;
    GuestMemory& operator=(GuestMemory&& other) noexcept;
    GuestMemory(const GuestMemory&) = delete;
    GuestMemory& operator=(const GuestMemory&) = delete;
    ~GuestMemory();

    [[nodiscard]] const std::vector<GuestMemoryRegion>& regions() const { return m_regions; }
    [[nodiscard]] uint64_t total_size() const;
    [[nodiscard]] GuestPageBacking backing() const { return m_backing; }
    [[nodiscard]] bool contains(Gpa gpa, uint64_t len) const { return find(gpa, len) != nullptr; }

    [[nodiscard]] std::optional<VolatileSlice> slice(Gpa gpa, uint64_t len) const;

    // Has the host give every page of [gpa, gpa + len) now, writable, in one
    // call (MADV_POPULATE_WRITE), before a loader copies a kernel or initrd in:
    // a copy into fresh guest RAM otherwise takes one page fault per 4 KiB.
    // Best effort: false (out of range, or a kernel before 5.14) only costs
    // those faults.
    bool populate_for_write(Gpa gpa, uint64_t len) const;
    [[nodiscard]] bool read(Gpa gpa, std::span<uint8_t> dst) const;
    [[nodiscard]] bool write(Gpa gpa, std::span<const uint8_t> src) const;

    template <typename T>
    [[nodiscard]] std::optional<T> read_obj(Gpa gpa) const {
        static_assert(std::is_trivially_copyable_v<T>);
        T value{};
        if (!read(gpa, std::span(reinterpret_cast<uint8_t*>(&value), sizeof(T)))) return std::nullopt;
        return value;
    }
    template <typename T>
    [[nodiscard]] bool write_obj(Gpa gpa, const T& value) const {
        static_assert(std::is_trivially_copyable_v<T>);
        return write(gpa, std::span(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
    }

    // Single-copy-atomic 16-bit accesses for indices shared with a running
    // guest (virtqueue avail.idx / used.idx, virtio 1.2 §2.7.13.3). `gpa` must
    // be 2-aligned (nullopt/false otherwise). load_acquire_u16: no later read
    // moves before it; store_release_u16: every earlier write is visible first.
    [[nodiscard]] std::optional<uint16_t> load_acquire_u16(Gpa gpa) const;
    [[nodiscard]] bool store_release_u16(Gpa gpa, uint16_t value) const;

    // Setup-time variants: throw keel::Error naming `what` when out of range.
    void write_or_throw(Gpa gpa, std::span<const uint8_t> src, const std::string& what) const;
    template <typename T>
    void write_obj_or_throw(Gpa gpa, const T& value, const std::string& what) const {
        static_assert(std::is_trivially_copyable_v<T>);
        write_or_throw(gpa, std::span(reinterpret_cast<const uint8_t*>(&value), sizeof(T)), what);
    }

private:
    GuestMemory() = default;
    [[nodiscard]] const GuestMemoryRegion* find(Gpa gpa, uint64_t len) const;
    void unmap_all();

    std::vector<GuestMemoryRegion> m_regions;
    GuestPageBacking m_backing = GuestPageBacking::Normal;
};

}  // namespace keel
