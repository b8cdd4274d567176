// libFuzzer target: the fuzz bytes are a virtio-rng driver and the host's
// entropy source. They choose features and queue size, then interleave
// chains (built by FakeDriverQueue, or raw descriptors a hostile driver
// writes), kicks, resets and entropy-source behaviour (short reads, EAGAIN,
// EIO). The real RngDevice serves them.
//
// Checks, after every kick:
//   - the device wrote guest memory only inside the writable buffers offered
//     since the last reset and inside the used ring (a byte-for-byte diff);
//   - driver mode: every used entry names a chain the driver offered, its
//     used length is at most that chain's writable bytes and at most
//     kMaxBytesPerRequest, the bytes after the used length are untouched, and
//     the used prefixes, in used-ring order, are exactly the entropy the
//     source handed out (nothing lost, repeated or invented);
//   - a chain with a device-readable buffer is never completed: the device
//     reports DEVICE_NEEDS_RESET instead (and counts an error);
//   - the "requests" and "bytes" counters match the used ring.
//
// Input layout:
//   u8  config: bits 2:0 log2(queue size), bit 3 EVENT_IDX, bit 4
//       INDIRECT_DESC, bit 5 hostile mode (raw descriptors)
//   then ops until the input ends: u8 opcode (see run_op)

#include <linux/virtio_config.h>
#define VIRTIO_RING_NO_LEGACY
#include <linux/virtio_ring.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "common/fd.h"
#include "fuzz_input.h"
#include "memory/guest_memory.h"
#include "virtio/rng_device.h"
#include "virtio_fakes/fake_driver_queue.h"
#include "virtio_fakes/fake_event_registry.h"
#include "virtio_fakes/fake_notifier.h"

namespace {

using keel::Gpa;
using keel::GuestMemory;
using keel::fuzz::check;
using Input = keel::fuzz::FuzzInput;
namespace virtio = keel::virtio;

constexpr uint64_t kRamSize = 0x10000;
// Buffers handed out per reset stay below this, so FakeDriverQueue's bump
// allocator never wraps and no two buffers overlap.
constexpr uint64_t kAllocBudget = 0x8000;

struct Host {
    Host() : memory(GuestMemory::create({{Gpa{0}, kRamSize}})), kick(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
        spdlog::set_level(spdlog::level::off);
        kick_fds[0] = kick.get();
    }
    GuestMemory memory;
    keel::UniqueFd kick;
    std::array<int, 1> kick_fds{};
};

Host& host() {
    static Host h;
    return h;
}

// The host entropy pool as the fuzz input plays it; remembers what it gave.
struct Entropy {
    std::vector<uint8_t> script;  // one behaviour byte per call, cycled
    size_t call = 0;
    uint8_t next_byte = 0;
    std::vector<uint8_t> handed_out;

    ssize_t fill(std::span<uint8_t> buffer) {
        const uint8_t mode = script.empty() ? 0 : script[call++ % script.size()];
        size_t n = buffer.size();
        switch (mode & 3) {
            case 1:
                return -EAGAIN;
            case 2:
                return (mode & 4) != 0 ? -EIO : 0;
            case 3:
                n = std::min<size_t>(n, (mode >> 2) + 1);
                break;  // a short read
            default:
                break;
        }
        for (size_t i = 0; i < n; ++i) buffer[i] = next_byte++;
        handed_out.insert(handed_out.end(), buffer.begin(), buffer.begin() + static_cast<ptrdiff_t>(n));
        return static_cast<ssize_t>(n);
    }
};

struct Offered {
    std::vector<std::pair<uint64_t, uint32_t>> writable;  // guest address, length
    uint64_t writable_bytes = 0;
    bool has_readable = false;
};

struct Rig {
    GuestMemory& memory = host().memory;
    uint64_t features = 0;
    uint16_t queue_size = 1;
    bool hostile = false;
    std::vector<virtio::Queue> queues;
    keel::test::FakeEventRegistry events;
    keel::test::FakeNotifier notifier;
    std::unique_ptr<keel::test::FakeDriverQueue> driver;
    std::map<uint16_t, Offered> offered;  // driver mode: by head
    std::vector<uint8_t> allowed;         // per guest byte: the device may write it
    uint64_t allocated = 0;
    uint16_t last_used = 0;
    uint64_t used_count = 0;
    uint64_t used_bytes = 0;
    size_t entropy_checked = 0;

    void allow(uint64_t addr, uint64_t len) {
        const uint64_t start = std::min(addr, kRamSize);
        const uint64_t end = std::max(start, std::min(addr + len, kRamSize));
        std::memset(allowed.data() + start, 1, end - start);
    }

    void start(virtio::RngDevice& device, Entropy& entropy) {
        device.reset();
        queues[0].reset();
        std::memset(allowed.data(), 0, allowed.size());
        offered.clear();
        allocated = 0;
        last_used = 0;
        entropy_checked = entropy.handed_out.size();
        driver = std::make_unique<keel::test::FakeDriverQueue>(memory, queue_size);
        const uint64_t used = driver->used_ring().value;
        allow(used, 6 + 8ull * queue_size);
        driver->configure(queues[0]);
        if (queues[0].activate(memory, features) != virtio::QueueError::None) queues[0].reset();
        const virtio::ActivationContext context{memory, queues, host().kick_fds, features, notifier, events};
        check(device.activate(context));
    }
};

void add_chain(Rig& rig, Input& in) {
    const uint8_t shape = in.u8();
    const uint32_t scale = 1u << (shape >> 5);
    std::vector<std::vector<uint8_t>> readable((shape & 0x40) != 0 && (shape & 3) == 3 ? 1 : 0);
    for (auto& r : readable) r.assign(1 + in.u8() % 16, 0x11);
    std::vector<uint32_t> writable(shape & 3);
    for (auto& w : writable) w = std::max<uint32_t>(1, in.u8() * scale);
    if (readable.empty() && writable.empty()) writable.push_back(1);
    uint64_t need = 0;
    for (const auto& r : readable) need += r.size() + 16;
    for (const uint32_t w : writable) need += w + 16;
    need += 16 * (readable.size() + writable.size());
    if (rig.allocated + need > kAllocBudget) return;
    uint16_t head = 0;
    try {
        head = (shape & 0x10) != 0 ? rig.driver->add_indirect_chain(readable, writable)
                                   : rig.driver->add_chain(readable, writable);
    } catch (const std::exception&) {
        return;  // no free descriptors
    }
    rig.allocated += need;
    Offered o;
    o.has_readable = !readable.empty();
    for (size_t i = 0; i < writable.size(); ++i) {
        const uint64_t addr = rig.driver->buffer_address(head, readable.size() + i).value;
        o.writable.emplace_back(addr, writable[i]);
        o.writable_bytes += writable[i];
        rig.allow(addr, writable[i]);
    }
    rig.offered[head] = o;
}

// A hostile driver: one raw descriptor (no INDIRECT: its table would be
// whatever guest memory holds) and maybe an avail entry naming any index.
void add_raw(Rig& rig, Input& in) {
    const uint16_t index = static_cast<uint16_t>(in.u8() % rig.queue_size);
    const uint64_t addr = rig.driver->data_start().value + uint64_t{in.u16()} * 4;
    const uint32_t len = in.u16();
    const uint8_t flags_byte = in.u8();
    const auto flags = static_cast<uint16_t>(flags_byte & (VRING_DESC_F_NEXT | VRING_DESC_F_WRITE));
    rig.driver->write_descriptor(index, addr, len, flags, static_cast<uint16_t>(in.u8() % rig.queue_size));
    if ((flags & VRING_DESC_F_WRITE) != 0) rig.allow(addr, len);
    if ((flags_byte & 0x80) != 0) rig.driver->push_avail(index);
}

// Checks every used entry the device added since the last call.
void collect_used(Rig& rig, Entropy& entropy) {
    const uint16_t idx = rig.driver->used_idx();
    for (; rig.last_used != idx; ++rig.last_used) {
        const keel::test::UsedEntry entry = rig.driver->used_entry(rig.last_used);
        ++rig.used_count;
        rig.used_bytes += entry.len;
        check(entry.len <= virtio::RngDevice::kMaxBytesPerRequest);
        if (rig.hostile) continue;
        const auto it = rig.offered.find(static_cast<uint16_t>(entry.id));
        check(entry.id <= UINT16_MAX && it != rig.offered.end());
        const Offered& o = it->second;
        check(!o.has_readable);
        check(entry.len <= o.writable_bytes);
        // The used prefix is the next stretch of entropy; the rest is untouched.
        uint64_t pos = 0;
        for (const auto& [addr, len] : o.writable) {
            std::vector<uint8_t> bytes(len);
            check(rig.memory.read(Gpa{addr}, bytes));
            for (uint32_t i = 0; i < len; ++i, ++pos) {
                if (pos < entry.len) {
                    check(rig.entropy_checked < entropy.handed_out.size());
                    check(bytes[i] == entropy.handed_out[rig.entropy_checked++]);
                } else {
                    check(bytes[i] == keel::test::FakeDriverQueue::kPoison);
                }
            }
        }
        rig.offered.erase(it);
    }
    (void)rig.driver->used_entries();  // give the descriptors back to the driver
    // Entropy the device fetched but did not deliver may only come from a
    // write that failed, which cannot happen to a well-behaved driver's buffers.
    if (!rig.hostile) check(rig.entropy_checked == entropy.handed_out.size());
}

void kick_and_run(Rig& rig, Entropy& entropy, bool kick) {
    std::vector<uint8_t> before(kRamSize);
    check(rig.memory.read(Gpa{0}, before));
    if (kick) {
        const uint64_t one = 1;
        check(::write(host().kick.get(), &one, sizeof one) == sizeof one);
        rig.events.run_ready(4);
    } else {
        (void)rig.events.run(host().kick.get());  // a wakeup without a kick
    }
    std::vector<uint8_t> after(kRamSize);
    check(rig.memory.read(Gpa{0}, after));
    if (before != after) {
        for (uint64_t a = 0; a < kRamSize; ++a) {
            if (before[a] != after[a]) check(rig.allowed[a] != 0);
        }
    }
    collect_used(rig, entropy);
    // A kick makes the device take every published chain (the queue holds
    // fewer than a wakeup's budget), so a readable one still waiting means
    // the device must have given up on it and asked for a reset.
    if (kick && !rig.hostile && rig.queues[0].active()) {
        for (const auto& entry : rig.offered) {
            if (entry.second.has_readable) check(rig.notifier.needs_reset());
        }
    }
}

void run_op(virtio::RngDevice& device, Rig& rig, Entropy& entropy, Input& in) {
    const uint8_t op = in.u8();
    switch (op % 8) {
        case 0:
        case 1: {
            const int chains = 1 + (op >> 3) % 8;
            for (int c = 0; c < chains; ++c) {
                if (rig.hostile) {
                    add_raw(rig, in);
                } else {
                    add_chain(rig, in);
                }
            }
            rig.driver->publish();
            break;
        }
        case 2:
        case 3:
            kick_and_run(rig, entropy, true);
            break;
        case 4:
            kick_and_run(rig, entropy, false);
            break;  // a spurious wakeup
        case 5:
            rig.start(device, entropy);
            break;
        case 6: {
            std::array<uint8_t, 8> config{};
            device.read_config(in.u8(), config);
            check(std::all_of(config.begin(), config.end(), [](uint8_t b) { return b == 0; }));
            device.write_config(in.u8(), config);
            break;
        }
        default:
            if (rig.hostile) {
                // Jump avail.idx: a driver claiming more chains than it wrote.
                rig.driver->set_avail_idx(in.u16());
            } else {
                rig.driver->set_used_event(in.u16());
            }
            break;
    }
}

uint64_t counter(const virtio::RngDevice& device, const char* name) {
    for (const auto& [key, value] : device.counters()) {
        if (key == name) return value;
    }
    check(false);
    return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Input in(std::span(data, size));
    Host& h = host();
    for (const auto& r : h.memory.regions()) std::fill_n(r.host, r.size, uint8_t{0});
    uint64_t drain = 0;
    [[maybe_unused]] const ssize_t drained = ::read(h.kick.get(), &drain, sizeof drain);

    const uint8_t config = in.u8();
    Entropy entropy;
    const auto script = in.bytes(in.u8() % 8);
    entropy.script.assign(script.begin(), script.end());

    Rig rig;
    rig.allowed.assign(kRamSize, 0);
    rig.queue_size = static_cast<uint16_t>(1u << (config % 8));
    rig.features = uint64_t{1} << VIRTIO_F_VERSION_1;
    if ((config & 0x08) != 0) rig.features |= uint64_t{1} << VIRTIO_RING_F_EVENT_IDX;
    if ((config & 0x10) != 0) rig.features |= uint64_t{1} << VIRTIO_RING_F_INDIRECT_DESC;
    rig.hostile = (config & 0x20) != 0;
    rig.queues.emplace_back(virtio::RngDevice::kQueueSize);

    virtio::RngDevice device([&entropy](std::span<uint8_t> buffer) { return entropy.fill(buffer); });
    rig.start(device, entropy);

    for (int ops = 0; !in.empty() && ops < 64; ++ops) run_op(device, rig, entropy, in);
    kick_and_run(rig, entropy, true);

    check(counter(device, "requests") == rig.used_count);
    check(counter(device, "bytes") == rig.used_bytes);
    if (rig.notifier.needs_reset()) check(counter(device, "errors") > 0);
    // A readable chain the device popped must have broken it; one still
    // waiting behind a stalled queue is fine.
    device.reset();
    check(rig.events.size() == 0);
    return 0;
}
