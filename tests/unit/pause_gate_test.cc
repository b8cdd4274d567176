#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "core/pause_gate.h"

using namespace keel;
using namespace std::chrono_literals;

namespace {

// Stand-ins for vCPU threads: each loops "park if paused, then run a bit".
struct FakeVcpus {
    PauseGate& gate;
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> runs{0};
    std::atomic<int> parks{0};
    std::vector<std::thread> threads;

    FakeVcpus(PauseGate& g, size_t count) : gate(g) {
        for (size_t i = 0; i < count; ++i) {
            threads.emplace_back([this] {
                while (!stop) {
                    gate.park_if_paused([this] { ++parks; });
                    ++runs;
                    std::this_thread::sleep_for(100us);
                }
            });
        }
    }
    ~FakeVcpus() {
        stop = true;
        gate.release_all();
        for (auto& t : threads) t.join();
    }
};

}  // namespace

TEST_CASE("a pause holds every vCPU until resume, and each parks once per pause", "[pause]") {
    PauseGate gate(3);
    FakeVcpus vcpus(gate, 3);
    std::this_thread::sleep_for(5ms);
    CHECK_FALSE(gate.pause_requested());
    gate.request_pause();
    REQUIRE(gate.wait_until_parked(5s));
    CHECK(vcpus.parks == 3);
    const auto frozen = vcpus.runs.load();
    std::this_thread::sleep_for(20ms);
    CHECK(vcpus.runs.load() == frozen);  // nothing ran while paused
    gate.resume();
    std::this_thread::sleep_for(20ms);
    CHECK(vcpus.runs.load() > frozen);
    // A second pause parks them all again.
    gate.request_pause();
    REQUIRE(gate.wait_until_parked(5s));
    CHECK(vcpus.parks == 6);
    gate.resume();
}

TEST_CASE("waiting for a pause times out if a vCPU never parks, and release_all ends every park", "[pause]") {
    PauseGate gate(2);
    FakeVcpus one(gate, 1);  // the second vCPU never comes
    gate.request_pause();
    CHECK_FALSE(gate.wait_until_parked(50ms));
    gate.release_all();  // a stop: the parked one must return, and none parks again
    const auto before = one.runs.load();
    std::this_thread::sleep_for(20ms);
    CHECK(one.runs.load() > before);
    CHECK_FALSE(gate.park_if_paused({}));
}
