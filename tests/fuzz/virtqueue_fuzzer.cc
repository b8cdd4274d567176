// libFuzzer target: the fuzz bytes are a guest driver. They choose the ring
// layout and features, fill guest RAM (either raw, or as well-formed chains
// built by FakeDriverQueue and then corrupted byte by byte), and interleave
// device operations with guest writes. The real Queue::activate, pop,
// Reader/Writer, add_used and notification code runs on it. Checks: nothing
// crashes or reads outside guest RAM (ASan), every buffer a chain hands out
// lies inside a RAM mapping, Broken is sticky, and every loop is bounded.
//
// Input layout:
//   u8  config: bits 2:0 log2(queue size), bit 3 INDIRECT_DESC, bit 4
//       EVENT_IDX, bit 5 raw mode
//   raw mode:    u16 desc, u16 avail, u16 used (guest addresses), u16 n,
//                then n bytes copied to guest address 0
//   driver mode: u8 chains, each u8 shape (bits 1:0 readable, 3:2 writable
//                buffers, bit 4 indirect) + one u8 length per buffer;
//                u8 pokes, each u16 address + u8 value
//   then ops until the input ends: u8 opcode (see run_op)

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <span>
#include <vector>

#include "fuzz_input.h"
#include "memory/guest_memory.h"
#include "virtio/queue/queue.h"
#include "virtio_fakes/fake_driver_queue.h"

namespace {

using keel::Gpa;
using keel::GuestMemory;
using keel::virtio::DescriptorChain;
using keel::virtio::PopStatus;
using keel::virtio::Queue;
using keel::virtio::QueueError;

constexpr uint64_t kRam0Size = 0x10000;   // [0, 64 KiB)
constexpr uint64_t kRam1Start = 0x20000;  // hole, then [128 KiB, 132 KiB)
constexpr uint64_t kRam1Size = 0x1000;
constexpr uint16_t kMaxQueueSize = 128;

using keel::fuzz::check;
using Input = keel::fuzz::FuzzInput;

struct Host {
    Host()
        : memory(GuestMemory::create({{Gpa{0}, kRam0Size}, {Gpa{kRam1Start}, kRam1Size}})),
          devnull(::open("/dev/null", O_WRONLY | O_CLOEXEC)),
          devzero(::open("/dev/zero", O_RDONLY | O_CLOEXEC)) {}
    GuestMemory memory;
    int devnull;
    int devzero;
};

Host& host() {
    static Host h;
    return h;
}

// Every byte a chain hands out must be inside a guest RAM mapping.
void check_iovecs(const GuestMemory& memory, std::span<const iovec> iov) {
    for (const auto& v : iov) {
        const auto* p = static_cast<const uint8_t*>(v.iov_base);
        bool inside = false;
        for (const auto& r : memory.regions()) {
            inside =
                inside || (p >= r.host && v.iov_len <= r.size && static_cast<size_t>(p - r.host) <= r.size - v.iov_len);
        }
        check(inside);
    }
}

void process_chain(const GuestMemory& memory, Queue& queue, const DescriptorChain& chain, Input& in) {
    check(chain.readable_bytes() <= UINT32_MAX && chain.writable_bytes() <= UINT32_MAX);
    auto reader = chain.reader();
    check(reader.remaining() == chain.readable_bytes());
    std::array<iovec, 16> iov{};
    size_t bytes = 0;
    const size_t n = reader.fill_iovecs(SIZE_MAX, iov, bytes);
    check_iovecs(memory, std::span(iov).first(n));
    (void)reader.read_obj<uint32_t>();
    auto rest = reader.split_at(in.u8());
    std::array<uint8_t, 64> scratch{};
    while (reader.read(std::span(scratch).first(std::min<size_t>(scratch.size(), reader.remaining())))) {
        if (reader.remaining() == 0) break;
    }
    check(rest.write_to_fd_at(host().devnull, rest.remaining(), 0) >= 0);
    check(rest.remaining() == 0);

    auto writer = chain.writer();
    check(writer.remaining() == chain.writable_bytes());
    const size_t wn = writer.fill_iovecs(SIZE_MAX, iov, bytes);
    check_iovecs(memory, std::span(iov).first(wn));
    auto status = writer.split_at(writer.remaining() > 0 ? writer.remaining() - 1 : 0);
    (void)writer.write_obj<uint16_t>(0x5a5a);
    const auto read = writer.read_from_fd_at(host().devzero, size_t{in.u8()} * 16, 0);
    check(read >= 0);
    (void)writer.fill_zero(writer.remaining());
    (void)status.write_obj<uint8_t>(0);
    const size_t written = writer.bytes_written() + status.bytes_written();
    check(written <= chain.writable_bytes());
    (void)queue.add_used(chain.head_index(), static_cast<uint32_t>(written));
}

// One device or guest action, chosen by the next input byte.
void run_op(const GuestMemory& memory, Queue& queue, DescriptorChain& chain, Input& in, uint64_t features) {
    switch (in.u8() % 8) {
        case 0:
        case 1: {
            const PopStatus status = queue.pop(chain);
            if (status == PopStatus::Chain) process_chain(memory, queue, chain, in);
            if (status == PopStatus::Broken) check(queue.last_error() != QueueError::None);
            break;
        }
        case 2:
            (void)queue.needs_notification();
            break;
        case 3:
            queue.disable_notification();
            break;
        case 4:
            (void)queue.enable_notification();
            break;
        case 5: {  // the guest writes RAM while the device works
            const uint16_t addr = in.u16();
            const uint8_t value = in.u8();
            (void)memory.write_obj(Gpa{addr}, value);
            break;
        }
        case 6:
            (void)queue.add_used(in.u16(), in.u8());
            break;  // a device bug must not hurt either
        case 7:
            (void)queue.activate(memory, features);
            break;
    }
}

void build_chains(keel::test::FakeDriverQueue& driver, Input& in) {
    const int chains = in.u8() % 32;
    for (int c = 0; c < chains; ++c) {
        const uint8_t shape = in.u8();
        std::vector<std::vector<uint8_t>> readable(shape & 3);
        std::vector<uint32_t> writable((shape >> 2) & 3);
        for (auto& r : readable) r.assign(in.u8(), 0x42);
        for (auto& w : writable) w = in.u8();
        if (readable.empty() && writable.empty()) writable.push_back(1);
        try {
            if ((shape & 0x10) != 0) {
                driver.add_indirect_chain(readable, writable);
            } else {
                driver.add_chain(readable, writable);
            }
        } catch (const std::exception&) {
            break;  // the ring is full
        }
    }
    driver.publish();
    const int pokes = in.u8() % 16;
    for (int p = 0; p < pokes; ++p) {
        const uint16_t addr = in.u16();
        (void)driver.memory().write_obj(Gpa{addr}, in.u8());
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Input in(std::span(data, size));
    const GuestMemory& memory = host().memory;
    for (const auto& r : memory.regions()) std::fill_n(r.host, r.size, uint8_t{0});

    const uint8_t config = in.u8();
    const auto queue_size = static_cast<uint16_t>(1u << (config & 7));
    uint64_t features = 0;
    if ((config & 0x08) != 0) features |= uint64_t{1} << VIRTIO_RING_F_INDIRECT_DESC;
    if ((config & 0x10) != 0) features |= uint64_t{1} << VIRTIO_RING_F_EVENT_IDX;

    Queue queue(kMaxQueueSize);
    if ((config & 0x20) != 0) {
        queue.set_size(queue_size);
        queue.set_desc_table(Gpa{in.u16()});
        queue.set_avail_ring(Gpa{in.u16()});
        queue.set_used_ring(Gpa{in.u16()});
        const auto contents = in.bytes(in.u16());
        check(memory.write(Gpa{0}, contents));
    } else {
        keel::test::FakeDriverQueue driver(memory, queue_size);
        driver.configure(queue);
        build_chains(driver, in);
    }
    if (queue.activate(memory, features) != QueueError::None) {
        DescriptorChain chain;
        check(queue.pop(chain) == PopStatus::Broken);
        return 0;
    }

    DescriptorChain chain;
    for (int op = 0; op < 512 && !in.empty(); ++op) run_op(memory, queue, chain, in, features);
    // Drain with a budget, as a device does per kick: the guest may keep the
    // ring non-empty for ever (even by pointing writable buffers at avail.idx).
    for (int i = 0; i < 4 * kMaxQueueSize; ++i) {
        const PopStatus status = queue.pop(chain);
        if (status != PopStatus::Chain) break;
        process_chain(memory, queue, chain, in);
    }
    const bool broken = queue.last_error() != QueueError::None;
    if (broken) check(queue.pop(chain) == PopStatus::Broken);
    return 0;
}
