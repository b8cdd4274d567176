// libFuzzer target: the fuzz bytes are a virtio-net driver and the TAP
// behind the device. They choose features, queue pairs and ring layout, fill
// guest RAM (raw bytes, or transmit, receive and control chains built by
// FakeDriverQueue and then corrupted), and interleave kicks, frames from the
// TAP side, TAP reads, guest writes, resets and config accesses. The real
// VirtioNet serves them over socketpair(AF_UNIX, SOCK_SEQPACKET) backends.
// Checks: nothing crashes or touches host memory outside guest RAM (ASan),
// every loop is bounded (no hang: handlers run a bounded number of rounds),
// and every message the device sends the TAP is a header and a frame of at
// most 64 KiB.
//
// Input layout:
//   u8  config: bit 0 MRG_RXBUF, bit 1 EVENT_IDX, bit 2 INDIRECT_DESC,
//       bit 3 raw mode, bit 4 MQ negotiated, bit 5 receive offloads,
//       bit 6 CTRL_GUEST_OFFLOADS, bit 7 leave a random queue disabled
//   u8  log2(queue size) (0..7)
//   raw mode: per queue u16 desc, u16 avail, u16 used (offsets in the
//             queue's region); u16 n, then n bytes copied to address 0
//   then ops until the input ends: u8 opcode (see run_op). In driver mode
//   (not raw) ops also add chains as a driver would: receive buffers,
//   transmit frames, control commands, or arbitrary shapes on any queue.

#include <linux/if_tun.h>
#include <linux/virtio_config.h>
#define VIRTIO_RING_NO_LEGACY
#include <linux/virtio_ring.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <span>
#include <vector>

#include "fuzz_input.h"
#include "common/fd.h"
#include "memory/guest_memory.h"
#include "virtio/net/net_device.h"
#include "virtio_fakes/fake_driver_queue.h"
#include "virtio_fakes/fake_event_registry.h"
#include "virtio_fakes/fake_notifier.h"

namespace {

using keel::Gpa;
using keel::GuestMemory;
using keel::UniqueFd;
namespace virtio = keel::virtio;

constexpr size_t kPairs = 2;
constexpr size_t kQueues = 2 * kPairs + 1;
constexpr uint64_t kRegionStride = 0x20000;  // queue i's region at i * stride ...
constexpr uint64_t kRegionSize = 0x10000;    // ... 64 KiB of RAM, then a hole
constexpr uint16_t kMaxQueueSize = 128;

using keel::fuzz::check;
using Input = keel::fuzz::FuzzInput;

struct Host {
    Host() : memory(make_memory()) {
        spdlog::set_level(spdlog::level::off);  // the device logs driver errors once per instance
        for (size_t i = 0; i < kPairs; ++i) {
            int fds[2] = {-1, -1};
            check(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
            device_fds[i] = UniqueFd(fds[0]);
            tap_fds[i] = UniqueFd(fds[1]);
            // Small buffers, so a full backend (EAGAIN) is easy to reach.
            const int size = 16 * 1024;
            (void)::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
        }
        for (size_t i = 0; i < kQueues; ++i) {
            kicks[i] = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
            kick_numbers[i] = kicks[i].get();
        }
    }
    static GuestMemory make_memory() {
        std::vector<keel::MemoryRegionSpec> regions;
        for (size_t i = 0; i < kQueues; ++i) regions.push_back({Gpa{i * kRegionStride}, kRegionSize});
        return GuestMemory::create(regions);
    }
    // Reads and checks every frame the device sent the TAP side.
    void drain_tap(size_t pair) {
        for (int i = 0; i < 512; ++i) {
            const ssize_t n = ::recv(tap_fds[pair].get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
            if (n < 0) return;
            const auto size = static_cast<size_t>(n);
            check(size > virtio::VirtioNet::kHeaderSize &&
                  size <= virtio::VirtioNet::kHeaderSize + virtio::VirtioNet::kMaxTxFrame);
        }
    }
    // Whatever a previous input left in the device-side socket.
    void drain_device_side(size_t pair) {
        for (int i = 0; i < 512; ++i) {
            if (::recv(device_fds[pair].get(), buffer.data(), buffer.size(), MSG_DONTWAIT) < 0) return;
        }
    }

    GuestMemory memory;
    std::array<UniqueFd, kPairs> device_fds;
    std::array<UniqueFd, kPairs> tap_fds;
    std::array<UniqueFd, kQueues> kicks;
    std::array<int, kQueues> kick_numbers{};
    std::vector<uint8_t> buffer = std::vector<uint8_t>(128 * 1024);
};

Host& host() {
    static Host h;
    return h;
}

// The host's socketpairs, not owned.
class FuzzBackend final : public virtio::NetBackend {
public:
    [[nodiscard]] size_t queue_pairs() const override { return kPairs; }
    [[nodiscard]] int queue_fd(size_t pair) const override { return host().device_fds.at(pair).get(); }
    [[nodiscard]] unsigned supported_offloads() const override {
        return TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO;
    }
    [[nodiscard]] bool set_offloads(unsigned /*tun_flags*/) override { return true; }
    [[nodiscard]] bool set_queue_attached(size_t pair, bool /*attached*/) override { return pair > 0 && pair < kPairs; }
};

struct Rig {
    GuestMemory& memory = host().memory;
    std::vector<virtio::Queue> queues;
    keel::test::FakeEventRegistry events;
    keel::test::FakeNotifier notifier;
    uint64_t features = 0;
    uint16_t queue_size = 1;
    size_t disabled = SIZE_MAX;
    std::array<uint16_t, kQueues> desc{}, avail{}, used{};
    bool raw = false;
    std::vector<std::unique_ptr<keel::test::FakeDriverQueue>> drivers;  // driver mode only

    // Driver mode: fresh rings at the start of each queue's region.
    void make_drivers() {
        drivers.clear();
        for (size_t i = 0; i < kQueues; ++i) {
            const uint64_t base = i * kRegionStride;
            drivers.push_back(std::make_unique<keel::test::FakeDriverQueue>(memory, queue_size, Gpa{base}));
            desc[i] = static_cast<uint16_t>(drivers[i]->desc_table().value - base);
            avail[i] = static_cast<uint16_t>(drivers[i]->avail_ring().value - base);
            used[i] = static_cast<uint16_t>(drivers[i]->used_ring().value - base);
        }
    }
    [[nodiscard]] size_t ctrl_queue() const {
        return (features & (uint64_t{1} << VIRTIO_NET_F_MQ)) != 0 ? 2 * kPairs : 2;
    }

    bool activate(virtio::VirtioNet& device) {
        for (size_t i = 0; i < queues.size(); ++i) {
            virtio::Queue& q = queues[i];
            q.reset();
            if (i == disabled) continue;
            const uint64_t base = i * kRegionStride;
            q.set_size(queue_size);
            q.set_desc_table(Gpa{base + desc[i]});
            q.set_avail_ring(Gpa{base + avail[i]});
            q.set_used_ring(Gpa{base + used[i]});
            q.set_ready(true);
            if (q.activate(memory, features) != virtio::QueueError::None) q.reset();  // left disabled
        }
        const virtio::ActivationContext context{memory, queues, host().kick_numbers, features, notifier, events};
        return device.activate(context);
    }
};

std::vector<uint8_t> concat_all(const std::vector<std::vector<uint8_t>>& parts) {
    std::vector<uint8_t> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

// One chain shaped like a driver's: readable buffers carry input bytes (a
// transmit frame or a control command), writable ones are receive space.
void add_chain(keel::test::FakeDriverQueue& driver, Input& in) {
    const uint8_t shape = in.u8();
    const uint32_t scale = 1u << (shape >> 5);  // lengths up to 255 * 128
    std::vector<std::vector<uint8_t>> readable(shape & 3);
    std::vector<uint32_t> writable((shape >> 2) & 3);
    for (auto& r : readable) {
        const size_t len = std::min<size_t>(size_t{in.u8()} * scale, 0x4000);
        const auto src = in.bytes(std::min<size_t>(len, 16));
        r.assign(len, 0x5a);
        std::copy(src.begin(), src.end(), r.begin());
    }
    for (auto& w : writable) w = std::min<uint32_t>(in.u8() * scale, 0x4000);
    if (readable.empty() && writable.empty()) writable.push_back(1);
    if ((shape & 0x10) != 0) {
        driver.add_indirect_chain(readable, writable);
    } else {
        driver.add_chain(readable, writable);
    }
}

void build_chains(keel::test::FakeDriverQueue& driver, Input& in) {
    const int chains = in.u8() % 8;
    for (int c = 0; c < chains; ++c) {
        try {
            add_chain(driver, in);
        } catch (const std::exception&) {
            break;  // the ring or the data area is full
        }
    }
    driver.publish();
}

// A control command as Linux builds it: header, payload, one ack byte.
void add_ctrl_command(keel::test::FakeDriverQueue& driver, Input& in) {
    const uint8_t shape = in.u8();
    std::vector<uint8_t> header{static_cast<uint8_t>(shape % 8), static_cast<uint8_t>((shape >> 3) % 4)};
    const auto payload = in.bytes(in.u8() % 24);
    std::vector<std::vector<uint8_t>> readable{header};
    if (!payload.empty()) readable.emplace_back(payload.begin(), payload.end());
    const std::vector<uint32_t> writable = (shape & 0x20) != 0 ? std::vector<uint32_t>{} : std::vector<uint32_t>{1};
    if ((shape & 0x40) != 0) readable = {concat_all(readable)};  // all in one descriptor
    try {
        if ((shape & 0x80) != 0) {
            driver.add_indirect_chain(readable, writable);
        } else {
            driver.add_chain(readable, writable);
        }
    } catch (const std::exception&) {
        return;
    }
    driver.publish();
}

// A transmit frame: a fuzz header, then a pattern of up to ~24 KiB, in one
// or two descriptors.
void add_tx_frame(keel::test::FakeDriverQueue& driver, Input& in) {
    const auto header = in.bytes(virtio::VirtioNet::kHeaderSize);
    const size_t len = size_t{in.u8()} * 96;
    std::vector<uint8_t> frame(header.begin(), header.end());
    frame.resize(header.size() + len, 0x77);
    std::vector<std::vector<uint8_t>> readable{frame};
    if (frame.size() > virtio::VirtioNet::kHeaderSize && (len & 1) != 0) {
        readable = {std::vector<uint8_t>(frame.begin(), frame.begin() + virtio::VirtioNet::kHeaderSize),
                    std::vector<uint8_t>(frame.begin() + virtio::VirtioNet::kHeaderSize, frame.end())};
    }
    try {
        driver.add_chain(readable, {});
    } catch (const std::exception&) {
        return;
    }
    driver.publish();
}

// Receive buffers: up to 8 chains of up to ~8 KiB.
void add_rx_buffers(keel::test::FakeDriverQueue& driver, Input& in) {
    const int chains = 1 + in.u8() % 8;
    for (int c = 0; c < chains; ++c) {
        const uint32_t len = uint32_t{in.u8()} * 32;
        try {
            driver.add_chain({}, {len == 0 ? 12 : len});
        } catch (const std::exception&) {
            break;
        }
    }
    driver.publish();
}

void kick(size_t q) {
    const uint64_t one = 1;
    check(::write(host().kick_numbers[q], &one, sizeof one) == sizeof one);
}

// A frame from the TAP side: fuzz header, then a pattern.
void tap_send(size_t pair, Input& in) {
    std::vector<uint8_t>& message = host().buffer;
    const uint16_t selector = in.u16();
    size_t len = selector & 0x7ff;                                // small frames
    if ((selector & 0x8000) != 0) len = (selector & 0x7fff) * 3;  // up to ~96 KiB
    len = std::min(len, message.size());
    const auto header = in.bytes(std::min<size_t>(len, virtio::VirtioNet::kHeaderSize));
    std::fill_n(message.begin(), len, uint8_t{0x3c});
    std::copy(header.begin(), header.end(), message.begin());
    (void)::send(host().tap_fds[pair].get(), message.data(), len, MSG_DONTWAIT);
}

void run_op(std::unique_ptr<virtio::VirtioNet>& device, Rig& rig, Input& in) {
    const uint8_t op = in.u8();
    const size_t q = (op >> 4) % kQueues;
    const size_t pair = (op >> 4) % kPairs;
    switch (op % 13) {
        case 0:
        case 1:
            kick(q);
            rig.events.run_ready(4);
            break;
        case 2:
            tap_send(pair, in);
            rig.events.run_ready(4);
            break;
        case 3:
            host().drain_tap(pair);
            break;
        case 4: {  // a guest write while the device works
            const uint64_t addr = (in.u8() % kQueues) * kRegionStride + in.u16() % kRegionSize;
            (void)rig.memory.write_obj(Gpa{addr}, in.u8());
            break;
        }
        case 5:
            device->reset();
            if (!rig.raw) rig.make_drivers();
            (void)rig.activate(*device);
            break;
        case 6: {
            std::array<uint8_t, 8> config{};
            device->read_config(in.u8(), config);
            device->write_config(in.u8(), config);
            (void)device->counters();
            break;
        }
        case 7:
            (void)rig.events.run(host().kick_numbers[q]);  // a spurious wakeup
            (void)rig.events.run(host().device_fds[pair].get());
            break;
        case 8:
            if (!rig.raw) build_chains(*rig.drivers[q], in);
            break;
        case 9:
            if (!rig.raw) add_ctrl_command(*rig.drivers[rig.ctrl_queue()], in);
            kick(rig.ctrl_queue());
            rig.events.run_ready(4);
            break;
        case 10:
            if (!rig.raw) add_tx_frame(*rig.drivers[2 * pair + 1], in);
            kick(2 * pair + 1);
            rig.events.run_ready(4);
            break;
        case 11:
            if (!rig.raw) add_rx_buffers(*rig.drivers[2 * pair], in);
            kick(2 * pair);
            rig.events.run_ready(4);
            break;
        default:
            rig.events.run_ready(4);
            break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Input in(std::span(data, size));
    Host& h = host();
    for (const auto& r : h.memory.regions()) std::fill_n(r.host, r.size, uint8_t{0});
    for (const int fd : h.kick_numbers) {
        uint64_t drain = 0;
        [[maybe_unused]] const ssize_t n = ::read(fd, &drain, sizeof drain);
    }
    for (size_t i = 0; i < kPairs; ++i) {
        h.drain_device_side(i);
        h.drain_tap(i);
    }

    const uint8_t config = in.u8();
    Rig rig;
    rig.queue_size = static_cast<uint16_t>(std::min<unsigned>(1u << (in.u8() % 8), kMaxQueueSize));
    rig.features = (uint64_t{1} << VIRTIO_F_VERSION_1) | (uint64_t{1} << VIRTIO_NET_F_CTRL_VQ) |
                   (uint64_t{1} << VIRTIO_NET_F_CTRL_RX) | (uint64_t{1} << VIRTIO_NET_F_CTRL_VLAN) |
                   (uint64_t{1} << VIRTIO_NET_F_CTRL_MAC_ADDR) | (uint64_t{1} << VIRTIO_NET_F_MAC);
    if ((config & 0x01) != 0) rig.features |= uint64_t{1} << VIRTIO_NET_F_MRG_RXBUF;
    if ((config & 0x02) != 0) rig.features |= uint64_t{1} << VIRTIO_RING_F_EVENT_IDX;
    if ((config & 0x04) != 0) rig.features |= uint64_t{1} << VIRTIO_RING_F_INDIRECT_DESC;
    if ((config & 0x10) != 0) rig.features |= uint64_t{1} << VIRTIO_NET_F_MQ;
    if ((config & 0x20) != 0) {
        for (const int bit : {VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6,
                              VIRTIO_NET_F_GUEST_ECN, VIRTIO_NET_F_GUEST_UFO}) {
            rig.features |= uint64_t{1} << bit;
        }
    }
    if ((config & 0x40) != 0) rig.features |= uint64_t{1} << VIRTIO_NET_F_CTRL_GUEST_OFFLOADS;
    if ((config & 0x80) != 0) rig.disabled = in.u8() % kQueues;
    rig.queues.reserve(kQueues);
    for (size_t i = 0; i < kQueues; ++i) rig.queues.emplace_back(virtio::VirtioNet::kQueueSize);

    virtio::NetDeviceConfig device_config;
    device_config.name = "fuzz";
    device_config.mac = {0x52, 0x54, 0, 0, 0, 1};
    auto device = std::make_unique<virtio::VirtioNet>(device_config, std::make_unique<FuzzBackend>());

    rig.raw = (config & 0x08) != 0;
    if (rig.raw) {
        for (size_t i = 0; i < kQueues; ++i) {
            rig.desc[i] = static_cast<uint16_t>(in.u16() % kRegionSize);
            rig.avail[i] = static_cast<uint16_t>(in.u16() % kRegionSize);
            rig.used[i] = static_cast<uint16_t>(in.u16() % kRegionSize);
        }
        const auto raw = in.bytes(in.u16());
        (void)h.memory.write(Gpa{0}, raw);
    } else {
        rig.make_drivers();
    }
    (void)rig.activate(*device);

    for (int ops = 0; !in.empty() && ops < 96; ++ops) run_op(device, rig, in);
    for (size_t i = 0; i < kPairs; ++i) h.drain_tap(i);
    device.reset();  // resets and unsubscribes
    check(rig.events.size() == 0);
    return 0;
}
