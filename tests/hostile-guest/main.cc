// The attack guest's main: find keel's virtio devices on whichever transport
// keel gave them, run every attack against every device, poke the whole
// address space, idle so the test can watch keel's threads, and power off.
// Each attack is followed by a reset and a correct use of the device: keel
// must still serve a driver that behaves.

#include <linux/virtio_ids.h>

#include "attacks.h"
#include "clock.h"
#include "console.h"
#include "driver.h"
#include "hw.h"
#include "protocol.h"

namespace hostile {
namespace {

constexpr uint32_t kPvhMagic = 0x336EC578;
constexpr uint32_t kMemmapRam = 1;
constexpr uint64_t kVirtioMmioStart = 0xD000'1000;
constexpr uint64_t kVirtioMmioStride = 0x1000;
constexpr unsigned kMaxDevices = 8;
constexpr uint32_t kRandomPokes = 20000;

struct [[gnu::packed]] PvhStartInfo {  // struct hvm_start_info, docs/guest-abi.md §2.2
    uint32_t magic, version, flags, nr_modules;
    uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
    uint32_t memmap_entries, reserved;
};
struct [[gnu::packed]] PvhMemmapEntry {
    uint64_t addr, size;
    uint32_t type, reserved;
};

// Set by hostile_main, whose stack holds the transports: objects with
// virtual functions need a constructor to run, and this guest has no code
// that would run static constructors.
MmioTransport* mmio_transports = nullptr;
PciTransport* pci_transports = nullptr;
Device devices[kMaxDevices];
unsigned device_count = 0;
uint32_t attacks_run = 0;
uint32_t attacks_failed = 0;

bool add_device(Transport* transport) {
    Device& d = devices[device_count];
    d.transport = transport;
    switch (transport->device_id()) {
        case VIRTIO_ID_BLOCK:
            d.kind = DeviceKind::Block, d.kind_name = "blk", d.ring_count = 1, d.request_queue = 0;
            break;
        case VIRTIO_ID_NET:
            d.kind = DeviceKind::Net, d.kind_name = "net", d.ring_count = 3, d.request_queue = 1;
            break;
        case VIRTIO_ID_RNG:
            d.kind = DeviceKind::Rng, d.kind_name = "rng", d.ring_count = 1, d.request_queue = 0;
            break;
        default:
            return false;
    }
    d.offered = transport->device_features();
    ++device_count;
    return true;
}

void discover_devices() {
    for (unsigned n = 0; n < 19 && device_count < kMaxDevices; ++n) {
        const uint64_t base = kVirtioMmioStart + n * kVirtioMmioStride;
        if (!MmioTransport::present(base)) continue;
        MmioTransport& transport = mmio_transports[device_count];
        transport.set_base(base);
        add_device(&transport);
    }
    for (uint8_t slot = 1; slot < 32 && device_count < kMaxDevices; ++slot) {
        if ((PciTransport::config_read32(slot, 0) & 0xFFFF) != 0x1AF4) continue;
        PciTransport& transport = pci_transports[device_count];
        if (!transport.init(slot)) {
            put("KEEL-ATTACK note pci slot ");
            put_dec(slot);
            put(" lacks a modern virtio capability\n");
            continue;
        }
        add_device(&transport);
    }
}

void put_outcomes(uint16_t set) {
    bool first = true;
    for (uint16_t b = 1; b <= kBroken; b = static_cast<uint16_t>(b << 1)) {
        if ((set & b) == 0) continue;
        if (!first) put_char('|');
        put(outcome_name(b));
        first = false;
    }
}

void report(const Device& d, const char* attack, uint16_t outcome, uint16_t expected, bool recovered) {
    const bool pass = (outcome & expected) != 0 && outcome != kBroken && recovered;
    ++attacks_run;
    if (!pass) ++attacks_failed;
    put(keel::hostile::kLinePrefix);
    put("result ");
    put(d.transport->name());
    put_char(' ');
    put(d.kind_name);
    put_char(' ');
    put(attack);
    put(" outcome=");
    put(outcome_name(outcome));
    put(" expected=");
    put_outcomes(expected);
    put(recovered ? " recovered=yes " : " recovered=no ");
    if (!pass && g_failure[0] != '\0') {
        put("reason=");
        put(g_failure);
        put_char(' ');
    }
    put(pass ? "PASS\n" : "FAIL\n");
}

// After anything the device went through: reset, set up as a correct driver
// would, use it, and leave it reset (so that no ring of it points into the
// DMA arena the next attack reuses).
bool recover(Device& d) {
    arena_reset();
    g_failure = "";
    const bool ok = bring_up(d) && prove_works(d);
    reset(d);
    return ok;
}

void run_attacks(Device& d) {
    uint32_t count = 0;
    const Attack* list = attacks(&count);
    const uint8_t kind_bit = d.kind == DeviceKind::Block ? kBlock : d.kind == DeviceKind::Net ? kNet : kRng;
    const bool pci = d.transport->is_pci();
    for (uint32_t i = 0; i < count; ++i) {
        const Attack& attack = list[i];
        if ((attack.devices & kind_bit) == 0 || (attack.pci_only && !pci)) continue;
        arena_reset();
        uint16_t outcome = kBroken;
        if (bring_up(d)) outcome = attack.run(d);
        report(d, attack.name, outcome, attack.expected, recover(d));
    }
}

void parse_memory_map(const PvhStartInfo& info) {
    const auto* entries = at<const PvhMemmapEntry>(info.memmap_paddr);
    for (uint32_t i = 0; i < info.memmap_entries; ++i) {
        if (entries[i].type != kMemmapRam) continue;
        const uint64_t end = entries[i].addr + entries[i].size;
        if (end > g_ram_top) g_ram_top = end;
        if (end >= 0xC000'0000 && entries[i].addr < 0xC000'0000) g_ram_reaches_hole = true;
    }
}

}  // namespace
}  // namespace hostile

extern "C" [[noreturn]] void hostile_main(uint64_t start_info_address) {
    using namespace hostile;
    const auto& info = *at<const PvhStartInfo>(start_info_address);
    if (info.magic != kPvhMagic) fatal("bad hvm_start_info magic", info.magic);
    parse_memory_map(info);
    init_interrupts_and_clock();
    MmioTransport mmio_on_stack[kMaxDevices];
    PciTransport pci_on_stack[kMaxDevices];
    mmio_transports = mmio_on_stack;
    pci_transports = pci_on_stack;
    put(keel::hostile::kLinePrefix);
    put("start ram-top ");
    put_hex(g_ram_top);
    put("\n");

    discover_devices();
    for (unsigned i = 0; i < device_count; ++i) {
        Device& d = devices[i];
        put(keel::hostile::kLinePrefix);
        put("device ");
        put(d.transport->name());
        put_char(' ');
        put(d.kind_name);
        put(" at ");
        put_hex(d.transport->window_base());
        put("\n");
        report(d, "baseline", recover(d) ? kIgnored : kBroken, kIgnored, true);
    }
    for (unsigned i = 0; i < device_count; ++i) run_attacks(devices[i]);

    random_port_pokes(kRandomPokes, 0xC0FFEE);
    random_mmio_pokes(kRandomPokes, 0xFACADE, g_ram_top);
    for (unsigned i = 0; i < device_count; ++i) {
        Device& d = devices[i];
        if (d.transport->is_pci()) {
            auto& pci = static_cast<PciTransport&>(*d.transport);
            (void)pci.init(pci.slot());
            PciTransport::config_write16(pci.slot(), static_cast<uint16_t>(pci.msix_capability() + 2), 0);
        }
        report(d, "random-port-and-mmio-pokes", kIgnored, kIgnored, recover(d));
    }

    put(keel::hostile::kLinePrefix);
    put("idle begin\n");
    (void)wait_for_console_byte();
    put(keel::hostile::kLinePrefix);
    put("idle end\n");

    put(keel::hostile::kLinePrefix);
    put("summary devices=");
    put_dec(device_count);
    put(" attacks=");
    put_dec(attacks_run);
    put(" failed=");
    put_dec(attacks_failed);
    put("\n");
    power_off();
}
