#include "core/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "common/fd.h"

using namespace keel;

namespace {

UniqueFd ready_eventfd() {
    UniqueFd fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    const uint64_t one = 1;
    REQUIRE(::write(fd.get(), &one, sizeof one) == sizeof one);
    return fd;
}

void consume(int fd) {
    uint64_t count = 0;
    (void)!::read(fd, &count, sizeof count);
}

}  // namespace

TEST_CASE("event loop: while devices are paused only control fds are served, and device work waits for the resume",
          "[event_loop]") {
    EventLoop loop;
    auto device = ready_eventfd();
    auto control = ready_eventfd();
    auto stop = ready_eventfd();
    std::vector<std::string> served;
    loop.add(device.get(), [&] {
        consume(device.get());
        served.emplace_back("device");
    });
    loop.add_control(control.get(), [&] {
        consume(control.get());
        served.emplace_back("control");
    });

    loop.pause_devices();
    loop.pause_devices();  // idempotent
    // A device subscribed while paused waits too.
    auto late = ready_eventfd();
    loop.add(late.get(), [&] {
        consume(late.get());
        served.emplace_back("late");
    });
    bool done = false;
    loop.add_control(stop.get(), [&] {
        consume(stop.get());
        done = true;
    });
    loop.run_until([&] { return done && served.size() >= 1; });
    CHECK(served == std::vector<std::string>{"control"});

    loop.resume_devices();
    loop.resume_devices();
    loop.run_until([&] { return served.size() >= 3; });
    std::sort(served.begin() + 1, served.end());
    CHECK(served == std::vector<std::string>{"control", "device", "late"});

    // A device removed while paused is gone for good.
    loop.pause_devices();
    const uint64_t one = 1;
    REQUIRE(::write(device.get(), &one, sizeof one) == sizeof one);
    loop.remove(device.get());
    loop.resume_devices();
    REQUIRE(::write(control.get(), &one, sizeof one) == sizeof one);
    loop.run_until([&] { return served.size() >= 4; });
    CHECK(served.back() == "control");
}
