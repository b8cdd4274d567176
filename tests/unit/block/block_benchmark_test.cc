// io_uring vs synchronous preadv/pwritev through the whole device (fake
// rings, parse, engine, completion) on a 64 MiB image. Hidden:
//     keel_block_tests "[.benchmark]"
// Prints one line per engine and pattern. "warm" reads hit the page cache
// (the engines' CPU cost); "cold" reads drop the file's pages first
// (posix_fadvise DONTNEED), so they measure how well each engine overlaps
// real device I/O. Writes go to the page cache (no flush per request).
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "block_test_support.h"

using namespace keel;
using namespace keel::block;
using namespace keel::test;

namespace {

constexpr uint64_t kImageSize = 64ull << 20;
constexpr uint64_t kRegion = 16ull << 20;  // guest RAM for the queue's buffers

enum class Pattern : uint8_t { Random, Sequential };

struct Workload {
    const char* name;
    uint32_t type;   // VIRTIO_BLK_T_IN or _OUT
    uint32_t block;  // bytes per request
    Pattern pattern;
    uint32_t queue_depth;  // requests published per kick
    uint32_t requests;
    bool cold;
};

void drop_cache(const TempImage& file) {
    const int fd = ::open(file.path().c_str(), O_RDONLY | O_CLOEXEC);
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
}

double run_workload(DiskIoEngine engine, const TempImage& file, const Workload& w) {
    BlockRig rig(make_block(file, engine), 256, kRingFeatures, kRegion);
    REQUIRE(rig.device().engine() == engine);
    REQUIRE(rig.activate());
    if (w.cold) drop_cache(file);
    std::mt19937_64 random(1234);
    const uint64_t blocks = kImageSize / w.block;
    const std::vector<uint8_t> payload(w.block, 0x5c);
    uint64_t next = 0;
    const auto start = std::chrono::steady_clock::now();
    for (uint32_t done = 0; done < w.requests; done += w.queue_depth) {
        for (uint32_t i = 0; i < w.queue_depth; ++i) {
            const uint64_t index = w.pattern == Pattern::Random ? random() % blocks : next++ % blocks;
            const uint64_t sector = index * w.block / kSector;
            if (w.type == VIRTIO_BLK_T_IN) {
                rig.driver().add_indirect_chain({blk_header(VIRTIO_BLK_T_IN, sector)}, {w.block, 1});
            } else {
                rig.driver().add_indirect_chain({blk_header(VIRTIO_BLK_T_OUT, sector), payload}, {1});
            }
        }
        rig.driver().publish();
        rig.kick();
        const auto used = rig.wait_used(w.queue_depth);
        REQUIRE(used.size() == w.queue_depth);
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    CHECK(rig.counter("errors") == 0);
    return elapsed.count();
}

}  // namespace

TEST_CASE("benchmark: io_uring and synchronous engines through the device", "[.benchmark]") {
    TempImage file(kImageSize);
    const std::vector<Workload> workloads{
        {"4K random read, warm, QD32", VIRTIO_BLK_T_IN, 4096, Pattern::Random, 32, 40000, false},
        {"4K random read, cold, QD32", VIRTIO_BLK_T_IN, 4096, Pattern::Random, 32, 8000, true},
        {"4K random write, QD32", VIRTIO_BLK_T_OUT, 4096, Pattern::Random, 32, 40000, false},
        {"4K random read, warm, QD1", VIRTIO_BLK_T_IN, 4096, Pattern::Random, 1, 20000, false},
        {"1M sequential read, warm, QD4", VIRTIO_BLK_T_IN, 1 << 20, Pattern::Sequential, 4, 512, false},
        {"1M sequential read, cold, QD4", VIRTIO_BLK_T_IN, 1 << 20, Pattern::Sequential, 4, 64, true},
        {"1M sequential write, QD4", VIRTIO_BLK_T_OUT, 1 << 20, Pattern::Sequential, 4, 512, false},
    };
    std::printf("%-32s %-6s %10s %10s %9s\n", "workload", "engine", "IOPS", "MiB/s", "seconds");
    for (const Workload& w : workloads) {
        for (const DiskIoEngine engine : {DiskIoEngine::Uring, DiskIoEngine::Sync}) {
            const double seconds = run_workload(engine, file, w);
            const double iops = w.requests / seconds;
            std::printf("%-32s %-6s %10.0f %10.1f %9.3f\n", w.name, std::string(to_string(engine)).c_str(), iops,
                        iops * w.block / (1 << 20), seconds);
            std::fflush(stdout);
        }
    }
}
