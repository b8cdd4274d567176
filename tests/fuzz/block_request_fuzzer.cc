// libFuzzer target: the fuzz bytes are a virtio-blk driver. They choose the
// ring layout, features and disk mode, fill guest RAM (raw bytes, or block
// requests built by FakeDriverQueue and then corrupted), and interleave kicks,
// resets and guest writes. The real VirtioBlock (synchronous engine) serves
// them against a small memfd image. Checks: nothing crashes or touches host
// memory outside guest RAM (ASan), the image never changes size, a read-only
// image never changes at all, and every loop is bounded. (Used lengths are
// not checked: the guest owns the used ring's memory and may scribble on it;
// block_device_test.cc checks them.)
//
// Input layout:
//   u8  config: bits 2:0 log2(queue size), bit 3 INDIRECT_DESC, bit 4
//       EVENT_IDX, bit 5 raw mode, bit 6 read-only, bit 7 two queues
//   raw mode:    u16 desc, u16 avail, u16 used (guest addresses), u16 n,
//                then n bytes copied to guest address 0
//   driver mode: u8 requests, each: u8 kind (see add_request), u8 sector,
//                u8 length; then u8 pokes, each u16 address + u8 value
//   then ops until the input ends: u8 opcode (see run_op)

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#define VIRTIO_RING_NO_LEGACY
#include <linux/virtio_ring.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "fuzz_input.h"
#include "common/fd.h"
#include "memory/guest_memory.h"
#include "virtio/block/block_device.h"
#include "virtio_fakes/fake_driver_queue.h"
#include "virtio_fakes/fake_event_registry.h"
#include "virtio_fakes/fake_notifier.h"

namespace {

using keel::Gpa;
using keel::GuestMemory;
using keel::UniqueFd;
namespace block = keel::block;
namespace virtio = keel::virtio;

constexpr uint64_t kRam0Size = 0x10000;   // [0, 64 KiB): rings and buffers of queue 0
constexpr uint64_t kRam1Start = 0x20000;  // hole, then [128 KiB, 160 KiB): queue 1
constexpr uint64_t kRam1Size = 0x8000;
constexpr uint64_t kImageSize = 64 * 1024;  // 128 sectors
constexpr uint16_t kMaxQueueSize = 128;

using keel::fuzz::check;
using Input = keel::fuzz::FuzzInput;

struct Host {
    Host()
        : memory(GuestMemory::create({{Gpa{0}, kRam0Size}, {Gpa{kRam1Start}, kRam1Size}})),
          image(::memfd_create("keel-block-fuzz", MFD_CLOEXEC)) {
        spdlog::set_level(spdlog::level::off);  // the device logs bad requests once per instance
        check(image.valid());
        path = "/proc/self/fd/" + std::to_string(image.get());
        initial.resize(kImageSize);
        for (size_t i = 0; i < initial.size(); ++i) initial[i] = static_cast<uint8_t>(i * 13 + 7);
        for (size_t i = 0; i < kicks.size(); ++i) {
            kicks[i] = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
            kick_numbers[i] = kicks[i].get();
        }
    }
    void restore_image() const {
        check(::ftruncate(image.get(), static_cast<off_t>(kImageSize)) == 0);
        check(::pwrite(image.get(), initial.data(), initial.size(), 0) == static_cast<ssize_t>(initial.size()));
    }
    [[nodiscard]] std::vector<uint8_t> image_bytes() const {
        std::vector<uint8_t> out(kImageSize);
        check(::pread(image.get(), out.data(), out.size(), 0) == static_cast<ssize_t>(out.size()));
        return out;
    }
    [[nodiscard]] uint64_t image_size() const {
        struct stat st {};
        check(::fstat(image.get(), &st) == 0);
        return static_cast<uint64_t>(st.st_size);
    }

    GuestMemory memory;
    UniqueFd image;
    std::string path;
    std::vector<uint8_t> initial;
    std::array<UniqueFd, 2> kicks;
    std::array<int, 2> kick_numbers{};
};

Host& host() {
    static Host h;
    return h;
}

std::vector<uint8_t> header(uint32_t type, uint64_t sector) {
    virtio_blk_outhdr h{};
    h.type = type;
    h.sector = sector;
    std::vector<uint8_t> out(sizeof h);
    std::memcpy(out.data(), &h, sizeof h);
    return out;
}

// One request shaped like a driver's, with fuzz-chosen type, sector and sizes.
void add_request(keel::test::FakeDriverQueue& driver, Input& in) {
    static constexpr std::array<uint32_t, 8> kTypes{
        VIRTIO_BLK_T_IN,      VIRTIO_BLK_T_OUT,          VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID,
        VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES, VIRTIO_BLK_T_IN,    0xdeadbeef};
    const uint8_t kind = in.u8();
    const uint32_t type = kTypes[kind & 7];
    const uint64_t sector = (kind & 0x40) != 0 ? UINT64_MAX - in.u8() : in.u8();
    const uint8_t length = in.u8();
    // bit 3: sector-multiple data; else odd sizes.
    const uint32_t data = (kind & 0x08) != 0 ? (length % 8) * 512u : length * 3u;
    std::vector<std::vector<uint8_t>> readable{header(type, sector)};
    std::vector<uint32_t> writable;
    if (type == VIRTIO_BLK_T_OUT && data > 0) readable.emplace_back(data, 0xab);
    if (type == VIRTIO_BLK_T_DISCARD || type == VIRTIO_BLK_T_WRITE_ZEROES) {
        const size_t segments = 1 + (length % 3);
        std::vector<uint8_t> raw;
        for (size_t s = 0; s < segments; ++s) {
            virtio_blk_discard_write_zeroes seg{};
            seg.sector = in.u8();
            seg.num_sectors = in.u8() % 64;
            seg.flags = in.u8() % 4;
            const auto* p = reinterpret_cast<const uint8_t*>(&seg);
            raw.insert(raw.end(), p, p + sizeof seg);
        }
        readable.push_back(raw);
    }
    if (type == VIRTIO_BLK_T_IN && data > 0) writable.push_back(data);
    if (type == VIRTIO_BLK_T_GET_ID) writable.push_back(length % 32);
    if ((kind & 0x10) == 0) writable.push_back(1);                                    // else: no status byte
    if ((kind & 0x20) != 0 && readable.size() > 1) readable.erase(readable.begin());  // header missing
    if (writable.empty() && readable.empty()) writable.push_back(1);
    if ((kind & 0x80) != 0) {
        driver.add_indirect_chain(readable, writable);
    } else {
        driver.add_chain(readable, writable);
    }
}

void build_requests(keel::test::FakeDriverQueue& driver, Input& in) {
    const int count = in.u8() % 24;
    for (int i = 0; i < count; ++i) {
        try {
            add_request(driver, in);
        } catch (const std::exception&) {
            break;  // the ring or the data area is full
        }
    }
    driver.publish();
    const int pokes = in.u8() % 16;
    for (int p = 0; p < pokes; ++p) {
        const uint16_t addr = in.u16();
        (void)driver.memory().write_obj(Gpa{addr}, in.u8());
    }
}

struct Rig {
    GuestMemory& memory = host().memory;
    std::vector<virtio::Queue> queues;
    keel::test::FakeEventRegistry events;
    keel::test::FakeNotifier notifier;
    uint64_t features = 0;
    uint16_t queue_size = 1;
    std::array<uint16_t, 2> desc{}, avail{}, used{};

    bool activate(block::VirtioBlock& device) {
        for (size_t i = 0; i < queues.size(); ++i) {
            virtio::Queue& q = queues[i];
            q.reset();
            const uint64_t base = i == 0 ? 0 : kRam1Start;
            q.set_size(queue_size);
            q.set_desc_table(Gpa{base + desc[i]});
            q.set_avail_ring(Gpa{base + avail[i]});
            q.set_used_ring(Gpa{base + used[i]});
            q.set_ready(true);
            if (q.activate(memory, features) != virtio::QueueError::None) q.reset();  // left disabled
        }
        const virtio::ActivationContext context{
            memory, queues, std::span<const int>(host().kick_numbers).first(queues.size()), features, notifier, events};
        return device.activate(context);
    }
};

void kick(uint16_t q) {
    const uint64_t one = 1;
    check(::write(host().kick_numbers[q], &one, sizeof one) == sizeof one);
}

void run_op(block::VirtioBlock& device, Rig& rig, Input& in) {
    const uint8_t op = in.u8();
    const auto q = static_cast<uint16_t>((op >> 4) % rig.queues.size());
    switch (op % 8) {
        case 0:
        case 1:
            kick(q);
            rig.events.run_ready(4);
            break;
        case 2:  // a guest write while the device works
            (void)rig.memory.write_obj(Gpa{in.u16()}, in.u8());
            break;
        case 3:
            device.reset();
            (void)rig.activate(device);
            break;
        case 4: {
            std::array<uint8_t, 8> config{};
            device.read_config(in.u8(), config);
            device.write_config(in.u8(), config);
            break;
        }
        case 5:
            (void)rig.events.run(host().kick_numbers[q]);  // a spurious wakeup
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
    h.restore_image();

    const uint8_t config = in.u8();
    const bool read_only = (config & 0x40) != 0;
    Rig rig;
    rig.queue_size = static_cast<uint16_t>(std::min<unsigned>(1u << (config & 7), kMaxQueueSize));
    rig.features = (uint64_t{1} << VIRTIO_F_VERSION_1) |
                   ((config & 0x08) != 0 ? uint64_t{1} << VIRTIO_RING_F_INDIRECT_DESC : 0) |
                   ((config & 0x10) != 0 ? uint64_t{1} << VIRTIO_RING_F_EVENT_IDX : 0);
    const uint16_t queue_count = (config & 0x80) != 0 ? 2 : 1;
    rig.queues.reserve(queue_count);
    for (uint16_t i = 0; i < queue_count; ++i) rig.queues.emplace_back(block::VirtioBlock::kQueueSize);

    block::BlockDeviceConfig device_config;
    device_config.name = "fuzz";
    device_config.serial = "fuzz-serial";
    device_config.num_queues = queue_count;
    device_config.io = block::DiskIoEngine::Sync;
    auto device = std::make_unique<block::VirtioBlock>(
        block::DiskImage::open(h.path, read_only ? block::DiskAccess::ReadOnly : block::DiskAccess::ReadWrite),
        device_config);

    if ((config & 0x20) != 0) {
        for (uint16_t i = 0; i < queue_count; ++i) {
            rig.desc[i] = in.u16();
            rig.avail[i] = in.u16();
            rig.used[i] = in.u16();
        }
        const auto raw = in.bytes(in.u16());
        (void)h.memory.write(Gpa{0}, raw);
        (void)rig.activate(*device);
    } else {
        std::vector<std::unique_ptr<keel::test::FakeDriverQueue>> drivers;
        for (uint16_t i = 0; i < queue_count; ++i) {
            drivers.push_back(
                std::make_unique<keel::test::FakeDriverQueue>(h.memory, rig.queue_size, Gpa{i == 0 ? 0 : kRam1Start}));
            rig.desc[i] = static_cast<uint16_t>(drivers[i]->desc_table().value - (i == 0 ? 0 : kRam1Start));
            rig.avail[i] = static_cast<uint16_t>(drivers[i]->avail_ring().value - (i == 0 ? 0 : kRam1Start));
            rig.used[i] = static_cast<uint16_t>(drivers[i]->used_ring().value - (i == 0 ? 0 : kRam1Start));
        }
        (void)rig.activate(*device);
        for (auto& driver : drivers) build_requests(*driver, in);
    }

    for (int ops = 0; !in.empty() && ops < 64; ++ops) run_op(*device, rig, in);
    device.reset();  // destroys it: waits for I/O, unsubscribes

    check(h.image_size() == kImageSize);
    if (read_only) check(h.image_bytes() == h.initial);
    return 0;
}
