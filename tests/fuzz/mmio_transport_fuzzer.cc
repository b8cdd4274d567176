// libFuzzer target: a virtio-mmio transport carrying virtio-rng, driven by a
// program of register accesses, with fuzz bytes as guest memory (so the rings
// and descriptors are fuzz-controlled) and the fake event loop run after
// every step. Checks that no sequence crashes, hangs or breaks the status
// invariants.
//
// Input: u16 program length P (little-endian), P program bytes, then the
// guest memory image (copied to guest address 0, the rest of RAM is zero).
// Each program step starts with an opcode byte; bits 7:5 pick the step:
//   0  read the register in row (next byte % 28) of the register table
//   1  write the next 4 bytes to the register in row (next byte % 28)
//   2  config access at 0x100 + next byte; width 1 << (op & 3); op bit 2 = write
//   3  raw access at (next u16 % 0x1000); width (op & 7) + 1; op bit 3 = write
//   4  bring up: features from the next byte, queue size (next byte), ring
//      addresses from the next three u16 (scaled by 16), up to DRIVER_OK
//   5  QueueNotify with the queue index in op bits 1:0
//   6  write 0 to the status register (reset)
//   7  poke guest memory: u16 offset, one byte (a driver publishing)

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#ifndef VIRTIO_RING_NO_LEGACY
#define VIRTIO_RING_NO_LEGACY  // its legacy vring_init() is not valid C++
#endif
#include <linux/virtio_ring.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>

#include <spdlog/spdlog.h>

#include "fuzz_input.h"
#include "../unit/virtio_fakes/fake_event_registry.h"
#include "memory/guest_memory.h"
#include "virtio/mmio_registers.h"
#include "virtio/mmio_transport.h"
#include "virtio/rng_device.h"

namespace {

using namespace keel;

constexpr uint64_t kRamSize = 64 * 1024;
constexpr uint64_t kVersion1 = 1ull << VIRTIO_F_VERSION_1;
constexpr uint64_t kEventIdx = 1ull << VIRTIO_RING_F_EVENT_IDX;
constexpr uint64_t kIndirect = 1ull << VIRTIO_RING_F_INDIRECT_DESC;

class CountingIrq final : public InterruptLine {
public:
    void trigger() override { ++count; }
    uint64_t count = 0;
};

using keel::fuzz::check;
using Program = keel::fuzz::FuzzInput;

// Deterministic "entropy": random bytes written into fuzz-controlled memory
// would make runs irreproducible.
ssize_t pattern_entropy(std::span<uint8_t> buffer) {
    std::fill(buffer.begin(), buffer.end(), uint8_t{0x5a});
    return static_cast<ssize_t>(buffer.size());
}

struct Rig {
    explicit Rig(GuestMemory& guest) : memory(guest) {}

    GuestMemory& memory;
    test::FakeEventRegistry events;
    std::shared_ptr<CountingIrq> irq = std::make_shared<CountingIrq>();
    virtio::VirtioMmioTransport transport{std::make_shared<virtio::RngDevice>(pattern_entropy), memory, events, irq,
                                          virtio::MmioSlot{Gpa{0xd0000000}, 5}};

    void write32(uint64_t offset, uint32_t value) {
        std::array<uint8_t, 4> data{};
        std::memcpy(data.data(), &value, sizeof value);
        transport.write(offset, data);
    }
    uint32_t read32(uint64_t offset) {
        std::array<uint8_t, 4> data{};
        transport.read(offset, data);
        uint32_t value = 0;
        std::memcpy(&value, data.data(), sizeof value);
        return value;
    }
    void add_status(uint32_t bits) { write32(VIRTIO_MMIO_STATUS, read32(VIRTIO_MMIO_STATUS) | bits); }

    void bring_up(Program& p) {
        const uint8_t choice = p.u8();
        uint64_t features = kVersion1;
        if (choice & 1) features |= kEventIdx;
        if (choice & 2) features |= kIndirect;
        if (choice & 4) features |= 1ull << (p.u8() % 64);  // maybe one the device did not offer
        const uint32_t size = uint32_t{1} << (p.u8() % 10);
        write32(VIRTIO_MMIO_STATUS, 0);
        add_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
        write32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
        write32(VIRTIO_MMIO_DRIVER_FEATURES, static_cast<uint32_t>(features));
        write32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
        write32(VIRTIO_MMIO_DRIVER_FEATURES, static_cast<uint32_t>(features >> 32));
        add_status(VIRTIO_CONFIG_S_FEATURES_OK);
        write32(VIRTIO_MMIO_QUEUE_SEL, 0);
        write32(VIRTIO_MMIO_QUEUE_NUM, size);
        write32(VIRTIO_MMIO_QUEUE_DESC_LOW, uint32_t{p.u16()} * 16 % kRamSize);
        write32(VIRTIO_MMIO_QUEUE_AVAIL_LOW, uint32_t{p.u16()} * 16 % kRamSize);
        write32(VIRTIO_MMIO_QUEUE_USED_LOW, uint32_t{p.u16()} * 16 % kRamSize);
        write32(VIRTIO_MMIO_QUEUE_READY, 1);
        add_status(VIRTIO_CONFIG_S_DRIVER_OK);
    }

    void step(Program& p) {
        const uint8_t op = p.u8();
        switch (op >> 5) {
            case 0: (void)read32(virtio::kMmioRegisters[p.u8() % virtio::kMmioRegisters.size()].offset); break;
            case 1: {
                const uint32_t offset = virtio::kMmioRegisters[p.u8() % virtio::kMmioRegisters.size()].offset;
                write32(offset, p.u32());
                break;
            }
            case 2: access(VIRTIO_MMIO_CONFIG + p.u8(), size_t{1} << (op & 3), (op & 4) != 0, p); break;
            case 3: access(p.u16() % virtio::kMmioWindowSize, (op & 7) + size_t{1}, (op & 8) != 0, p); break;
            case 4: bring_up(p); break;
            case 5: write32(VIRTIO_MMIO_QUEUE_NOTIFY, op & 3u); break;
            case 6: write32(VIRTIO_MMIO_STATUS, 0); break;
            default: {
                const uint16_t offset = p.u16();
                const uint8_t value = p.u8();
                check(memory.write(Gpa{offset}, std::span<const uint8_t>(&value, 1)));
                break;
            }
        }
    }

    void access(uint64_t offset, size_t width, bool write, Program& p) {
        std::array<uint8_t, 8> buffer{};
        if (write) {
            for (size_t i = 0; i < width; ++i) buffer[i] = p.u8();
            transport.write(offset, std::span<const uint8_t>(buffer.data(), width));
        } else {
            transport.read(offset, std::span<uint8_t>(buffer.data(), width));
        }
    }

    void check_invariants() {
        const uint8_t status = transport.core().status();
        if (status & VIRTIO_CONFIG_S_DRIVER_OK) check((status & VIRTIO_CONFIG_S_FEATURES_OK) != 0);
        if (status & VIRTIO_CONFIG_S_FEATURES_OK) check((transport.core().acked_features() & kVersion1) != 0);
        check((transport.interrupt_status() & ~uint32_t{VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG}) == 0);
    }
};

GuestMemory& guest_memory() {
    static GuestMemory memory = GuestMemory::create({{Gpa{0}, kRamSize}});
    return memory;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    // Guest-triggered warnings are logged once per device, i.e. once per run
    // here: silence them, or stderr dominates the run time.
    spdlog::set_level(spdlog::level::off);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> input(data, size);
    if (input.size() < 2) return 0;
    const size_t program_len = std::min<size_t>(input[0] | (size_t{input[1]} << 8), input.size() - 2);
    const auto program = input.subspan(2, program_len);
    const auto image = input.subspan(2 + program_len);

    GuestMemory& memory = guest_memory();
    const auto& region = memory.regions().front();
    std::memset(region.host, 0, region.size);
    std::memcpy(region.host, image.data(), std::min<size_t>(image.size(), region.size));

    Rig rig(memory);
    Program p(program);
    while (!p.empty()) {
        rig.step(p);
        // Bounded: a device that keeps its fd readable must not hang the run.
        rig.events.run_ready(4);
        rig.check_invariants();
    }
    return 0;
}
