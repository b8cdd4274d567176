// Reader and Writer: the only way devices touch a chain's buffers.

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>

#include "queue_test_support.h"

using namespace keel;
using namespace keel::test;
using virtio::GuestBuffer;
using virtio::PopStatus;
using virtio::Reader;
using virtio::Writer;

namespace {

// `count` buffers of `len` bytes each, 64 bytes apart, holding 0, 1, 2, ...
std::vector<GuestBuffer> scattered(const GuestMemory& memory, size_t count, uint32_t len) {
    std::vector<GuestBuffer> buffers;
    uint8_t value = 0;
    for (size_t i = 0; i < count; ++i) {
        const Gpa at{0x10000 + i * (len + 64)};
        std::vector<uint8_t> data(len);
        for (auto& b : data) b = value++;
        REQUIRE(memory.write(at, data));
        buffers.push_back({at, len});
    }
    return buffers;
}

std::vector<uint8_t> counting(size_t n) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i);
    return v;
}

// An unlinked temporary file, closed on scope exit.
struct TempFile {
    TempFile() {
        char path[] = "/tmp/keel-queue-test-XXXXXX";
        fd = ::mkstemp(path);
        REQUIRE(fd >= 0);
        ::unlink(path);
    }
    ~TempFile() { ::close(fd); }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    int fd = -1;
};

}  // namespace

TEST_CASE("a reader reads across buffer boundaries", "[virtio_queue][reader]") {
    auto memory = make_memory();
    const auto buffers = scattered(memory, 3, 5);
    Reader reader(memory, buffers);
    CHECK(reader.remaining() == 15);
    std::array<uint8_t, 7> first{};
    REQUIRE(reader.read(first));
    CHECK(first == std::array<uint8_t, 7>{0, 1, 2, 3, 4, 5, 6});
    CHECK(reader.consumed() == 7);
    CHECK(reader.remaining() == 8);
    const auto value = reader.read_obj<uint32_t>();
    REQUIRE(value.has_value());
    CHECK(*value == 0x0a090807u);
    REQUIRE(reader.skip(2));
    CHECK(reader.read_obj<uint16_t>() == std::optional<uint16_t>(0x0e0d));
    CHECK(reader.remaining() == 0);
}

TEST_CASE("a read larger than what remains fails and consumes nothing", "[virtio_queue][reader]") {
    auto memory = make_memory();
    const auto buffers = scattered(memory, 2, 4);
    Reader reader(memory, buffers);
    REQUIRE(reader.skip(3));
    std::array<uint8_t, 6> too_big{};
    CHECK_FALSE(reader.read(too_big));
    CHECK_FALSE(reader.read_obj<uint64_t>().has_value());
    CHECK_FALSE(reader.skip(6));
    CHECK(reader.remaining() == 5);
    CHECK(reader.consumed() == 3);
    CHECK(reader.read_obj<uint8_t>() == std::optional<uint8_t>(3));
}

TEST_CASE("an empty reader and writer have nothing and do nothing", "[virtio_queue][reader]") {
    Reader reader;
    Writer writer;
    CHECK(reader.remaining() == 0);
    CHECK(writer.remaining() == 0);
    std::array<uint8_t, 1> byte{};
    CHECK_FALSE(reader.read(byte));
    CHECK_FALSE(writer.write(byte));
    CHECK(reader.read(std::span<uint8_t>{}));
    std::array<iovec, 4> iov{};
    size_t bytes = 1;
    CHECK(reader.fill_iovecs(10, iov, bytes) == 0);
    CHECK(bytes == 0);
    CHECK(reader.write_to_fd_at(-1, 10, 0) == 0);
    CHECK(writer.read_from_fd_at(-1, 10, 0) == 0);
}

TEST_CASE("split_at divides a reader into a head and the rest", "[virtio_queue][reader]") {
    auto memory = make_memory();
    const auto buffers = scattered(memory, 4, 4);
    Reader header(memory, buffers);
    REQUIRE(header.skip(1));
    Reader rest = header.split_at(6);  // header: bytes 1..6, rest: 7..15
    CHECK(header.remaining() == 6);
    CHECK(rest.remaining() == 9);
    CHECK(bytes_of(header) == std::vector<uint8_t>{1, 2, 3, 4, 5, 6});
    std::array<uint8_t, 7> too_big{};
    CHECK_FALSE(header.read(too_big));  // the split caps the view
    CHECK(rest.read_obj<uint8_t>() == std::optional<uint8_t>(7));
    Reader nothing = rest.split_at(100);
    CHECK(nothing.remaining() == 0);
    CHECK(rest.remaining() == 8);
}

TEST_CASE("a writer writes across buffers and counts what it wrote", "[virtio_queue][writer]") {
    QueueRig rig;
    const uint16_t head = rig.driver.submit({}, {3, 3, 4});
    REQUIRE(rig.pop() == PopStatus::Chain);
    Writer writer = rig.chain.writer();
    REQUIRE(writer.write(std::vector<uint8_t>{1, 2, 3, 4, 5}));
    CHECK(writer.bytes_written() == 5);
    REQUIRE(writer.fill_zero(2));
    CHECK_FALSE(writer.write(std::vector<uint8_t>(4, 9)));  // 3 left: all or nothing
    CHECK_FALSE(writer.fill_zero(4));
    REQUIRE(writer.write_obj<uint8_t>(0xee));
    CHECK(writer.bytes_written() == 8);
    CHECK(writer.remaining() == 2);
    CHECK(rig.driver.written(head) ==
          std::vector<uint8_t>{1, 2, 3, 4, 5, 0, 0, 0xee, FakeDriverQueue::kPoison, FakeDriverQueue::kPoison});
}

TEST_CASE("a split writer puts a status byte after the data part", "[virtio_queue][writer]") {
    QueueRig rig;
    const uint16_t head = rig.driver.submit({}, {8, 1});
    REQUIRE(rig.pop() == PopStatus::Chain);
    Writer data = rig.chain.writer();
    Writer status = data.split_at(data.remaining() - 1);
    CHECK(data.remaining() == 8);
    CHECK(status.remaining() == 1);
    REQUIRE(data.write(std::vector<uint8_t>{1, 2, 3}));  // a short data phase
    REQUIRE(status.write_obj<uint8_t>(0));
    CHECK(data.bytes_written() + status.bytes_written() == 4);
    const auto out = rig.driver.written(head);
    CHECK(out[0] == 1);
    CHECK(out[3] == FakeDriverQueue::kPoison);
    CHECK(out[8] == 0);
}

TEST_CASE("fill_iovecs maps many buffers without consuming them", "[virtio_queue][iovec]") {
    auto memory = make_memory();
    const auto buffers = scattered(memory, 100, 10);
    Reader reader(memory, buffers);
    REQUIRE(reader.skip(5));
    std::array<iovec, 8> iov{};
    size_t bytes = 0;
    CHECK(reader.fill_iovecs(1000, iov, bytes) == 8);  // limited by the array
    CHECK(bytes == 5 + 7 * 10);
    CHECK(iov[0].iov_len == 5);
    CHECK(*static_cast<uint8_t*>(iov[0].iov_base) == 5);
    CHECK(reader.consumed() == 5);
    CHECK(reader.fill_iovecs(12, iov, bytes) == 2);  // limited by the count
    CHECK(bytes == 12);
    CHECK(iov[1].iov_len == 7);
    reader.consume(bytes);
    CHECK(reader.read_obj<uint8_t>() == std::optional<uint8_t>(17));
    reader.consume(100000);  // clamped to what remains
    CHECK(reader.remaining() == 0);
}

TEST_CASE("writer commit counts bytes filled through iovecs", "[virtio_queue][iovec]") {
    auto memory = make_memory();
    const auto buffers = scattered(memory, 3, 4);
    Writer writer(memory, buffers);
    std::array<iovec, 4> iov{};
    size_t bytes = 0;
    REQUIRE(writer.fill_iovecs(6, iov, bytes) == 2);
    std::memset(iov[0].iov_base, 0x11, iov[0].iov_len);
    std::memset(iov[1].iov_base, 0x22, iov[1].iov_len);
    writer.commit(bytes);
    CHECK(writer.bytes_written() == 6);
    CHECK(writer.remaining() == 6);
    CHECK(memory.read_obj<uint8_t>(Gpa{buffers[1].addr.value + 1}) == std::optional<uint8_t>(0x22));
}

TEST_CASE("write_to_fd_at writes a long scattered chain to a file offset", "[virtio_queue][fd]") {
    auto memory = make_memory();
    const auto buffers = scattered(memory, 150, 100);  // more than one batch of iovecs
    Reader reader(memory, buffers);
    REQUIRE(reader.skip(10));
    TempFile file;
    CHECK(reader.write_to_fd_at(file.fd, 14000, 4096) == 14000);
    CHECK(reader.consumed() == 14010);
    CHECK(reader.remaining() == 990);
    std::vector<uint8_t> back(14000);
    REQUIRE(::pread(file.fd, back.data(), back.size(), 4096) == 14000);
    std::vector<uint8_t> expected(14000);
    for (size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<uint8_t>(i + 10);
    CHECK(back == expected);
    // More than remains: writes what there is.
    CHECK(reader.write_to_fd_at(file.fd, 5000, 0) == 990);
}

TEST_CASE("read_from_fd_at fills a chain and stops at end of file", "[virtio_queue][fd]") {
    auto memory = make_memory();
    const auto buffers = scattered(memory, 100, 64);
    TempFile file;
    const auto content = counting(3000);
    REQUIRE(::pwrite(file.fd, content.data(), content.size(), 0) == 3000);
    Writer writer(memory, buffers);
    CHECK(writer.read_from_fd_at(file.fd, 6400, 1000) == 2000);  // short: EOF at 3000
    CHECK(writer.bytes_written() == 2000);
    Reader check(memory, buffers);
    std::vector<uint8_t> got(2000);
    REQUIRE(check.read(got));
    CHECK(got == std::vector<uint8_t>(content.begin() + 1000, content.end()));
    CHECK(writer.read_from_fd_at(file.fd, 100, 5000) == 0);
}

TEST_CASE("fd errors come back as negative errno", "[virtio_queue][fd]") {
    auto memory = make_memory();
    const auto buffers = scattered(memory, 2, 8);
    Reader reader(memory, buffers);
    Writer writer(memory, buffers);
    CHECK(reader.write_to_fd_at(-1, 16, 0) == -EBADF);
    CHECK(writer.read_from_fd_at(-1, 16, 0) == -EBADF);
    CHECK(reader.write_to_fd_at(0, 16, -1) == -EINVAL);
    CHECK(reader.consumed() == 0);
    CHECK(writer.bytes_written() == 0);
}
