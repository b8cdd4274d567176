// The shared virtio test doubles behave like what they stand in for.

#include <sys/eventfd.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "common/error.h"
#include "queue_test_support.h"
#include "virtio_fakes/fake_event_registry.h"
#include "virtio_fakes/fake_notifier.h"

using namespace keel;
using namespace keel::test;
using virtio::PopStatus;

namespace {

struct EventFd {
    EventFd() : fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) { REQUIRE(fd >= 0); }
    ~EventFd() { ::close(fd); }
    EventFd(const EventFd&) = delete;
    EventFd& operator=(const EventFd&) = delete;
    void signal() const {
        const uint64_t one = 1;
        REQUIRE(::write(fd, &one, sizeof one) == sizeof one);
    }
    void drain() const {
        uint64_t value = 0;
        (void)::read(fd, &value, sizeof value);
    }
    int fd;
};

}  // namespace

TEST_CASE("the fake event registry runs handlers of readable fds only", "[virtio_fakes]") {
    FakeEventRegistry events;
    EventFd a;
    EventFd b;
    int a_runs = 0;
    int b_runs = 0;
    events.add(a.fd, [&] {
        a.drain();
        ++a_runs;
    });
    events.add(b.fd, [&] {
        b.drain();
        ++b_runs;
    });
    CHECK(events.contains(a.fd));
    CHECK(events.run_ready() == 0);
    a.signal();
    CHECK(events.run_ready() == 1);
    CHECK(a_runs == 1);
    CHECK(b_runs == 0);
    events.remove(a.fd);
    CHECK_FALSE(events.contains(a.fd));
    a.signal();
    CHECK(events.run_ready() == 0);
}

TEST_CASE("the fake event registry refuses an fd twice and bounds a handler that never drains", "[virtio_fakes]") {
    FakeEventRegistry events;
    EventFd a;
    int runs = 0;
    events.add(a.fd, [&] { ++runs; });
    CHECK_THROWS_AS(events.add(a.fd, [] {}), Error);
    a.signal();
    CHECK(events.run_ready(5) == 5);
    CHECK(runs == 5);
}

TEST_CASE("a handler may remove itself from the fake event registry", "[virtio_fakes]") {
    FakeEventRegistry events;
    EventFd a;
    events.add(a.fd, [&] { events.remove(a.fd); });
    a.signal();
    CHECK(events.run_ready() == 1);
    CHECK(events.size() == 0);
}

TEST_CASE("the fake notifier counts signals per queue", "[virtio_fakes]") {
    FakeNotifier notifier;
    notifier.signal_used_queue(0);
    notifier.signal_used_queue(1);
    notifier.signal_used_queue(1);
    notifier.signal_config_change();
    CHECK(notifier.used_signals(0) == 1);
    CHECK(notifier.used_signals(1) == 2);
    CHECK(notifier.used_signals(2) == 0);
    CHECK(notifier.used_signals() == 3);
    CHECK(notifier.config_signals() == 1);
    CHECK_FALSE(notifier.needs_reset());
    notifier.set_needs_reset();
    CHECK(notifier.needs_reset());
    notifier.clear();
    CHECK(notifier.used_signals() == 0);
}

TEST_CASE("the fake driver reuses descriptors the device returned", "[virtio_fakes]") {
    QueueRig rig(4);
    for (int i = 0; i < 10; ++i) {
        const uint16_t head = rig.driver.submit({{1}, {2}}, {1, 1});
        CHECK(rig.driver.free_descriptors() == 0);
        REQUIRE(rig.pop() == PopStatus::Chain);
        REQUIRE(rig.queue.add_used(head, 0));
        CHECK(rig.driver.used_entries().size() == 1);
        CHECK(rig.driver.free_descriptors() == 4);
    }
}

TEST_CASE("the fake driver places its rings where configure() says", "[virtio_fakes]") {
    auto memory = make_memory();
    FakeDriverQueue driver(memory, 32, Gpa{kRam1Start});
    virtio::Queue queue(64);
    driver.configure(queue);
    CHECK(queue.size() == 32);
    CHECK(queue.desc_table() == Gpa{kRam1Start});
    CHECK(queue.avail_ring() == driver.avail_ring());
    CHECK(queue.used_ring() == driver.used_ring());
    CHECK(queue.ready());
    CHECK(driver.data_start().value % 4096 == 0);
    REQUIRE(queue.activate(memory, 0) == virtio::QueueError::None);
    const uint16_t head = driver.submit({5, 6}, 0);
    virtio::DescriptorChain chain;
    REQUIRE(queue.pop(chain) == PopStatus::Chain);
    CHECK(chain.head_index() == head);
    CHECK(driver.buffer_address(head, 0).value >= kRam1Start);
}

TEST_CASE("add_all_or_none subscribes every handler, or none when one add fails", "[fakes][events]") {
    keel::test::FakeEventRegistry events;
    int runs = 0;
    keel::EventHandlers good;
    good.emplace_back(10, [&runs] { ++runs; });
    good.emplace_back(11, [&runs] { ++runs; });
    CHECK(keel::add_all_or_none(events, good) == std::vector<int>{10, 11});
    CHECK(events.adds() == 2);

    // fd 11 is taken: 12 was added before the failure and must be removed again.
    keel::EventHandlers clashing;
    clashing.emplace_back(12, [] {});
    clashing.emplace_back(11, [] {});
    CHECK_THROWS_AS(keel::add_all_or_none(events, clashing), keel::Error);
    CHECK(events.adds() == 3);
    CHECK(events.removes() == 1);
}
