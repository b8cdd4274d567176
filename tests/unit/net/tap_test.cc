// The TAP backend against the real kernel. Creating a TAP needs
// CAP_NET_ADMIN and /dev/net/tun; without them these cases say so and pass
// (the KVM tests cover the same paths inside the sandbox, where keel is root).
#include "virtio/net/tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "common/error.h"

using namespace keel;

namespace {

std::string unique_name(const char* tag) {
    return std::string("kt") + tag + std::to_string(getpid() % 100000);
}

bool may_create_taps() {
    const int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) return false;
    ifreq request{};
    std::strncpy(request.ifr_name, unique_name("p").c_str(), IFNAMSIZ - 1);
    request.ifr_flags = IFF_TAP | IFF_NO_PI;
    const bool ok = ioctl(fd, TUNSETIFF, &request) == 0;
    close(fd);
    return ok;
}

// A TAP fd as an orchestrator might open it, with the given flags.
int open_tap_fd(const std::string& name, short flags) {
    const int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    REQUIRE(fd >= 0);
    ifreq request{};
    std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
    request.ifr_flags = flags;
    REQUIRE(ioctl(fd, TUNSETIFF, &request) == 0);
    return fd;
}

}  // namespace

TEST_CASE("a TAP keel creates gets one fd per queue pair and reports its offloads", "[net][tap]") {
    if (!may_create_taps()) {
        WARN("cannot create TAP devices here (no /dev/net/tun or no CAP_NET_ADMIN): skipped");
        return;
    }
    const std::string name = unique_name("m");
    auto tap = net::Tap::open(name, 3);
    CHECK(tap->interface_name() == name);
    CHECK(tap->queue_pairs() == 3);
    for (size_t i = 0; i < tap->queue_pairs(); ++i) {
        CHECK((fcntl(tap->queue_fd(i), F_GETFL) & O_NONBLOCK) != 0);
        int header_size = 0;
        REQUIRE(ioctl(tap->queue_fd(i), TUNGETVNETHDRSZ, &header_size) == 0);
        CHECK(header_size == 12);
    }
    CHECK(tap->mtu() == 1500);
    // Every Linux since 2.6.27 takes checksum offload, and TSO with it.
    CHECK((tap->supported_offloads() & TUN_F_CSUM) != 0);
    CHECK((tap->supported_offloads() & TUN_F_TSO4) != 0);
    CHECK(tap->set_offloads(TUN_F_CSUM | TUN_F_TSO4));
    CHECK(tap->set_offloads(0));
}

TEST_CASE("queues of a multi-queue TAP detach and attach again, queue 0 stays", "[net][tap]") {
    if (!may_create_taps()) {
        WARN("cannot create TAP devices here (no /dev/net/tun or no CAP_NET_ADMIN): skipped");
        return;
    }
    auto tap = net::Tap::open(unique_name("q"), 3);
    REQUIRE(tap->queue_pairs() == 3);
    // The kernel refuses to detach a detached queue and to attach an
    // attached one (EINVAL): probe with the opposite request, then undo it.
    const auto attached = [&](size_t pair) {
        ifreq request{};
        request.ifr_flags = IFF_DETACH_QUEUE;
        if (ioctl(tap->queue_fd(pair), TUNSETQUEUE, &request) != 0) return false;
        request.ifr_flags = IFF_ATTACH_QUEUE;
        REQUIRE(ioctl(tap->queue_fd(pair), TUNSETQUEUE, &request) == 0);
        return true;
    };
    CHECK(tap->set_queue_attached(2, false));
    CHECK_FALSE(attached(2));
    CHECK(attached(1));
    CHECK(tap->set_queue_attached(2, false));  // already detached: nothing to do
    CHECK(tap->set_queue_attached(2, true));
    CHECK(attached(2));
    CHECK_FALSE(tap->set_queue_attached(0, false));
    CHECK(attached(0));
    CHECK_FALSE(tap->set_queue_attached(3, true));
}

TEST_CASE("one queue pair needs no multi-queue TAP", "[net][tap]") {
    if (!may_create_taps()) {
        WARN("cannot create TAP devices here: skipped");
        return;
    }
    auto tap = net::Tap::open(unique_name("s"), 1);
    CHECK(tap->queue_pairs() == 1);
    ifreq request{};
    REQUIRE(ioctl(tap->queue_fd(0), TUNGETIFF, &request) == 0);
    CHECK((request.ifr_flags & IFF_MULTI_QUEUE) == 0);
    CHECK((request.ifr_flags & IFF_VNET_HDR) != 0);
}

TEST_CASE("an adopted TAP fd is checked and duplicated", "[net][tap]") {
    if (!may_create_taps()) {
        WARN("cannot create TAP devices here: skipped");
        return;
    }
    const std::string name = unique_name("a");
    const int good = open_tap_fd(name, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
    {
        auto tap = net::Tap::adopt(good);
        CHECK(tap->interface_name() == name);
        CHECK(tap->queue_pairs() == 1);
        CHECK(tap->queue_fd(0) != good);  // keel owns a duplicate, the caller keeps its fd
    }
    CHECK(fcntl(good, F_GETFD) >= 0);
    close(good);

    const int no_vnet = open_tap_fd(unique_name("b"), IFF_TAP | IFF_NO_PI);
    CHECK_THROWS_WITH(net::Tap::adopt(no_vnet), Catch::Contains("IFF_VNET_HDR"));
    close(no_vnet);
    const int tun = open_tap_fd(unique_name("c"), IFF_TUN | IFF_NO_PI | IFF_VNET_HDR);
    CHECK_THROWS_WITH(net::Tap::adopt(tun), Catch::Contains("TUN device"));
    close(tun);
}

TEST_CASE("adopting something that is no TAP names the fd", "[net][tap]") {
    int pipe_fds[2];
    REQUIRE(pipe2(pipe_fds, O_CLOEXEC) == 0);
    CHECK_THROWS_WITH(net::Tap::adopt(pipe_fds[0]),
                      Catch::Contains("--net fd=" + std::to_string(pipe_fds[0])) && Catch::Contains("not a TAP"));
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    CHECK_THROWS_WITH(net::Tap::adopt(1000), Catch::Contains("not an open file descriptor"));
}
