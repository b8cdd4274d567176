// libFuzzer target: a virtio-pci transport carrying virtio-rng, driven by a
// program of config-space and BAR accesses, with fuzz bytes as guest memory
// (rings and descriptors are fuzz-controlled) and the fake event loop run
// after every step. Checks that no sequence crashes or hangs, that the
// vector registers only ever read a table entry or NO_VECTOR, and that the
// MSI-X sink only hears of vectors the table has.
//
// Input: u16 program length P (little-endian), P program bytes, then the
// guest memory image (copied to guest address 0; the rest of RAM is zero).
// Each step starts with an opcode byte; bits 7:5 pick the step:
//   0  common cfg read of row (next byte % rows), its natural width
//   1  common cfg write of the next 4 bytes to row (next byte % rows)
//   2  config space access at the next byte, width 1 << (op & 1) * 2 aligned
//      as PciRoot guarantees; op bit 2 = write (4 bytes follow); op bit 3
//      picks the PCI_CFG capability's fields instead of a raw offset
//   3  raw BAR access at (next u16 % BAR size); width (op & 7) + 1; op bit
//      3 = write (bytes follow)
//   4  bring up: features from the next byte, queue size, ring addresses
//      from the next three u16 (scaled by 16), MSI-X on, up to DRIVER_OK
//   5  notify: 2-byte write at notify offset + 4 * (op & 3)
//   6  device-side events: op & 3 = used buffer, config change, needs
//      reset, or virtio reset (status 0)
//   7  poke guest memory: u16 offset, one byte (a driver publishing)

#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#ifndef VIRTIO_RING_NO_LEGACY
#define VIRTIO_RING_NO_LEGACY  // its legacy vring_init() is not valid C++
#endif
#include <linux/virtio_ring.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>

#include "fuzz_input.h"
#include "../unit/virtio_fakes/fake_event_registry.h"
#include "memory/guest_memory.h"
#include "pci/msi.h"
#include "virtio/pci/common_cfg.h"
#include "virtio/pci/virtio_pci_transport.h"
#include "virtio/rng_device.h"

namespace {

using namespace keel;
using virtio::VirtioPciLayout;

constexpr uint64_t kRamSize = 64 * 1024;
constexpr uint16_t kVectors = 2;  // rng: one queue + config

using keel::fuzz::check;
using Program = keel::fuzz::FuzzInput;

ssize_t pattern_entropy(std::span<uint8_t> buffer) {
    for (size_t i = 0; i < buffer.size(); ++i) buffer[i] = static_cast<uint8_t>(i * 31 + 7);
    return static_cast<ssize_t>(buffer.size());
}

// The sink checks what the MSI-X capability hands it.
class CheckingSink final : public pci::MsiVectorSink {
public:
    void configure(uint16_t vector, const pci::MsiMessage& /*message*/) override { check(vector < kVectors); }
    void trigger(uint16_t vector) override {
        check(vector < kVectors);
        ++triggers;
    }
    uint64_t triggers = 0;
};

struct Rig {
    explicit Rig(GuestMemory& guest) : memory(guest) {}

    GuestMemory& memory;
    test::FakeEventRegistry events;
    std::shared_ptr<CheckingSink> sink = std::make_shared<CheckingSink>();
    std::shared_ptr<virtio::VirtioPciTransport> transport = std::make_shared<virtio::VirtioPciTransport>(
        std::make_shared<virtio::RngDevice>(pattern_entropy), memory, events, sink, "virtio-rng");

    uint64_t bar_read(uint64_t offset, size_t width) {
        std::array<uint8_t, 8> data{};
        transport->bar_read(offset, std::span(data).first(width));
        uint64_t value = 0;
        std::memcpy(&value, data.data(), sizeof value);
        return value;
    }
    void bar_write(uint64_t offset, size_t width, uint64_t value) {
        std::array<uint8_t, 8> data{};
        std::memcpy(data.data(), &value, sizeof value);
        transport->bar_write(offset, std::span<const uint8_t>(data).first(width));
    }
    void config_write(uint16_t offset, size_t width, uint32_t value) {
        std::array<uint8_t, 4> data{};
        std::memcpy(data.data(), &value, sizeof value);
        transport->config_write(offset, std::span<const uint8_t>(data).first(width));
    }
    uint8_t status() { return static_cast<uint8_t>(bar_read(VIRTIO_PCI_COMMON_STATUS, 1)); }
    void add_status(uint8_t bits) { bar_write(VIRTIO_PCI_COMMON_STATUS, 1, status() | bits); }

    void bring_up(Program& p) {
        const uint8_t choice = p.u8();
        uint64_t features = 1ull << VIRTIO_F_VERSION_1;
        if (choice & 1) features |= 1ull << VIRTIO_RING_F_EVENT_IDX;
        if (choice & 2) features |= 1ull << VIRTIO_RING_F_INDIRECT_DESC;
        if (choice & 4) features |= 1ull << (p.u8() % 64);
        const uint16_t size = static_cast<uint16_t>(1u << (p.u8() % 10));
        bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0);
        add_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
        bar_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
        bar_write(VIRTIO_PCI_COMMON_GF, 4, static_cast<uint32_t>(features));
        bar_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
        bar_write(VIRTIO_PCI_COMMON_GF, 4, features >> 32);
        add_status(VIRTIO_CONFIG_S_FEATURES_OK);
        enable_msix();
        bar_write(VIRTIO_PCI_COMMON_MSIX, 2, 0);
        bar_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
        bar_write(VIRTIO_PCI_COMMON_Q_SIZE, 2, size);
        bar_write(VIRTIO_PCI_COMMON_Q_DESCLO, 4, uint32_t{p.u16()} * 16 % kRamSize);
        bar_write(VIRTIO_PCI_COMMON_Q_AVAILLO, 4, uint32_t{p.u16()} * 16 % kRamSize);
        bar_write(VIRTIO_PCI_COMMON_Q_USEDLO, 4, uint32_t{p.u16()} * 16 % kRamSize);
        bar_write(VIRTIO_PCI_COMMON_Q_MSIX, 2, choice >> 4);  // sometimes out of range
        bar_write(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
        add_status(VIRTIO_CONFIG_S_DRIVER_OK);
    }

    void enable_msix() {
        const uint8_t cap = msix_cap();
        config_write(static_cast<uint16_t>(cap + PCI_MSIX_FLAGS), 2, PCI_MSIX_FLAGS_ENABLE);
        for (uint16_t v = 0; v < kVectors; ++v) {
            const uint64_t entry = transport->layout().msix_table_offset + uint64_t{v} * PCI_MSIX_ENTRY_SIZE;
            bar_write(entry + PCI_MSIX_ENTRY_LOWER_ADDR, 4, 0xfee00000);
            bar_write(entry + PCI_MSIX_ENTRY_DATA, 4, 0x40u + v);
            bar_write(entry + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0);
        }
    }
    // Walks the capability list, as a driver does.
    uint8_t msix_cap() {
        std::array<uint8_t, 1> byte{};
        transport->config_read(PCI_CAPABILITY_LIST, byte);
        for (int ttl = 48; ttl > 0 && byte[0] >= PCI_STD_HEADER_SIZEOF; --ttl) {
            const uint8_t pos = byte[0];
            transport->config_read(pos, byte);
            if (byte[0] == PCI_CAP_ID_MSIX) return pos;
            transport->config_read(static_cast<uint16_t>(pos + PCI_CAP_LIST_NEXT), byte);
        }
        std::abort();  // the transport always has one
    }

    void config_access(uint8_t op, Program& p) {
        const size_t width = size_t{1} << ((op & 3) % 3);
        uint16_t offset = p.u8();
        if (op & 8) offset = static_cast<uint16_t>(transport->pci_cfg_capability() + 4 + (offset % 16));
        offset = static_cast<uint16_t>(offset & ~(width - 1));
        if (op & 4) {
            config_write(offset, width, p.u32());
        } else {
            std::array<uint8_t, 4> data{};
            transport->config_read(offset, std::span(data).first(width));
        }
    }

    void raw_access(uint8_t op, Program& p) {
        const uint64_t offset = p.u16() % transport->layout().bar_size;
        const size_t width = (op & 7) + size_t{1};
        if (op & 8) {
            std::array<uint8_t, 8> data{};
            for (size_t i = 0; i < width; ++i) data[i] = p.u8();
            transport->bar_write(offset, std::span<const uint8_t>(data).first(width));
        } else {
            (void)bar_read(offset, width);
        }
    }

    void step(Program& p) {
        const uint8_t op = p.u8();
        const auto& rows = virtio::kCommonRegisters;
        switch (op >> 5) {
            case 0: {
                const auto& row = rows[p.u8() % rows.size()];
                (void)bar_read(row.offset, row.width);
                break;
            }
            case 1: {
                const auto& row = rows[p.u8() % rows.size()];
                bar_write(row.offset, row.width, p.u32());
                break;
            }
            case 2:
                config_access(op, p);
                break;
            case 3:
                raw_access(op, p);
                break;
            case 4:
                bring_up(p);
                break;
            case 5:
                bar_write(VirtioPciLayout::kNotifyOffset + 4u * (op & 3u), 2, op & 3u);
                break;
            case 6:
                device_event(op & 3);
                break;
            default: {
                const uint16_t offset = p.u16();
                const uint8_t value = p.u8();
                check(memory.write(Gpa{offset}, std::span<const uint8_t>(&value, 1)));
                break;
            }
        }
    }

    void device_event(unsigned which) {
        switch (which) {
            case 0:
                transport->signal_used_queue(0);
                break;
            case 1:
                transport->signal_config_change();
                break;
            case 2:
                transport->set_needs_reset();
                break;
            default:
                bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0);
                break;
        }
    }

    void check_invariants() {
        const uint8_t st = transport->core().status();
        if (st & VIRTIO_CONFIG_S_DRIVER_OK) check((st & VIRTIO_CONFIG_S_FEATURES_OK) != 0);
        check((transport->isr() & ~uint8_t{3}) == 0);
        const auto vector_ok = [](uint64_t v) { return v < kVectors || v == virtio::kNoVector; };
        check(vector_ok(bar_read(VIRTIO_PCI_COMMON_MSIX, 2)));
        check(vector_ok(bar_read(VIRTIO_PCI_COMMON_Q_MSIX, 2)));
        check(bar_read(VIRTIO_PCI_COMMON_NUMQ, 2) == 1);
    }
};

GuestMemory& guest_memory() {
    static GuestMemory memory = GuestMemory::create({{Gpa{0}, kRamSize}});
    return memory;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    // Each run builds a new transport, whose "logged once" warnings would
    // otherwise print on every run.
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
