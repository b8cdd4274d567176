// Guest RAM on 2 MiB hugetlbfs pages and on transparent huge pages
// (--hugepages, --thp), and how keel's memory report counts hugetlbfs pages.

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "common/error.h"
#include "core/memory_overhead.h"
#include "memory/guest_memory.h"

using namespace keel;

namespace {

uint64_t read_count(const std::string& path) {
    std::ifstream file(path);
    uint64_t count = 0;
    return file >> count ? count : 0;
}

uint64_t pool_count(const char* name) {
    return read_count(std::string("/sys/kernel/mm/hugepages/hugepages-2048kB/") + name);
}

// The VmFlags line of the smaps entry that starts at `host`.
std::string vm_flags_of(const void* host) {
    std::ifstream smaps("/proc/self/smaps");
    std::ostringstream start;
    start << std::hex << reinterpret_cast<uintptr_t>(host) << "-";
    std::string line;
    bool in_entry = false;
    while (std::getline(smaps, line)) {
        if (line.rfind(start.str(), 0) == 0) in_entry = true;
        if (in_entry && line.rfind("VmFlags:", 0) == 0) return line;
    }
    return "";
}

}  // namespace

TEST_CASE("2 MiB huge pages need regions aligned to 2 MiB", "[memory][hugepages]") {
    CHECK_THROWS_WITH(GuestMemory::create({{Gpa(0), 3 * 1024 * 1024}}, GuestPageBacking::Hugetlb2M),
                      Catch::Contains("not aligned to 2 MiB"));
    CHECK_THROWS_WITH(GuestMemory::create({{Gpa(0x100000), 2 * 1024 * 1024}}, GuestPageBacking::Hugetlb2M),
                      Catch::Contains("not aligned to 2 MiB"));
}

TEST_CASE("a huge-page pool too small for the guest is an error at start that says how to grow it",
          "[memory][hugepages]") {
    if (read_count("/proc/sys/vm/nr_overcommit_hugepages") != 0) {
        WARN("this host lets hugetlbfs overcommit; the pool cannot run short");
        return;
    }
    // One page more than the pool has free can never be reserved.
    const uint64_t pages = pool_count("free_hugepages") + 1;
    try {
        (void)GuestMemory::create({{Gpa(0), pages * kHugePageSize}}, GuestPageBacking::Hugetlb2M);
        FAIL("mapping " << pages << " huge pages succeeded");
    } catch (const Error& e) {
        const std::string message = e.what();
        CHECK_THAT(message, Catch::Contains("with 2 MiB huge pages"));
        CHECK_THAT(message, Catch::Contains("it needs " + std::to_string(pages)));
        CHECK_THAT(message, Catch::Contains("sysctl vm.nr_hugepages="));
    }
}

TEST_CASE("guest RAM on 2 MiB huge pages is read and written like any other", "[memory][hugepages]") {
    if (pool_count("free_hugepages") < 2) {
        WARN("fewer than 2 free 2 MiB huge pages on this host (vm.nr_hugepages): not checked here");
        return;
    }
    auto memory = GuestMemory::create({{Gpa(0), 2 * kHugePageSize}}, GuestPageBacking::Hugetlb2M);
    CHECK(memory.backing() == GuestPageBacking::Hugetlb2M);
    REQUIRE(memory.write_obj<uint64_t>(Gpa(kHugePageSize + 8), 0x1122334455667788));
    CHECK(memory.read_obj<uint64_t>(Gpa(kHugePageSize + 8)) == 0x1122334455667788);
    CHECK_THAT(vm_flags_of(memory.regions()[0].host), Catch::Contains(" ht"));  // hugetlb
}

TEST_CASE("transparent huge pages are asked for on guest RAM only when chosen", "[memory][hugepages]") {
    auto thp = GuestMemory::create({{Gpa(0), 4 * kHugePageSize}}, GuestPageBacking::Transparent);
    CHECK(thp.backing() == GuestPageBacking::Transparent);
    CHECK_THAT(vm_flags_of(thp.regions()[0].host), Catch::Contains(" hg"));  // MADV_HUGEPAGE
    CHECK_THAT(vm_flags_of(thp.regions()[0].host), Catch::Contains(" dc"));  // MADV_DONTFORK
    auto normal = GuestMemory::create({{Gpa(0), 4 * kHugePageSize}});
    CHECK(normal.backing() == GuestPageBacking::Normal);
    CHECK_THAT(vm_flags_of(normal.regions()[0].host), !Catch::Contains(" hg"));
    CHECK_THAT(vm_flags_of(normal.regions()[0].host), Catch::Contains(" nr"));  // MAP_NORESERVE
}

TEST_CASE("hugetlbfs pages count as memory although smaps keeps them out of Rss", "[memory][hugepages]") {
    // A keel with --hugepages that touched 6 MiB of guest RAM, trimmed to the fields that matter.
    const std::string smaps =
        "7f0000000000-7f0008000000 rw-p 00000000 00:10 4242                       /anon_hugepage (deleted)\n"
        "Size:             131072 kB\n"
        "Rss:                   0 kB\n"
        "Pss:                   0 kB\n"
        "Shared_Hugetlb:        0 kB\n"
        "Private_Hugetlb:    6144 kB\n"
        "VmFlags: rd wr mr mw me de ht dd\n"
        "55d000000000-55d000021000 rw-p 00000000 00:00 0                          [heap]\n"
        "Rss:                 132 kB\n"
        "Pss:                 132 kB\n"
        "Private_Hugetlb:       0 kB\n";
    const auto breakdown = classify_smaps(smaps, {{0x7f0000000000, 0x7f0008000000}}, {}, "/usr/bin/keel");
    CHECK(breakdown.guest_ram.rss_kib == 6144);
    CHECK(breakdown.guest_ram.pss_kib == 6144);
    CHECK(breakdown.heap.rss_kib == 132);
    CHECK(breakdown.overhead().rss_kib == 132);
}
