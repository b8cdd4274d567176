// libFuzzer target: the fuzz bytes are a program of guest accesses to PCI bus
// 0 — configuration mechanism #1 (ports 0xCF8-0xCFF), ECAM, and the BARs of
// one function whose BAR 0 holds an MSI-X table and PBA — interleaved with
// event-loop triggers of MSI-X vectors. It checks that nothing crashes, that
// read-only registers stay put, that absent functions read all-ones, and that
// the MSI sink only ever sees configured, existing vectors.
//
// Each step starts with an opcode byte:
//   bits 2:0  target: 0 = ports, 1 = ECAM, 2 = MMIO bus (BARs), 3 = trigger,
//             4-7 = ports again (the common path)
//   bits 4:3  width 1 << n (1, 2, 4, 8 bytes)
//   bit 5     write (the data bytes follow the offset)
// then a 16-bit little-endian offset (ECAM: scaled to cover bus 0's 1 MiB and
// a little past it; MMIO: relative to the start of the PCI window).

#include <linux/pci_regs.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <set>
#include <span>
#include <string_view>
#include <vector>

#include "fuzz_input.h"
#include "bus/bus.h"
#include "pci/msix.h"
#include "pci/pci_config_space.h"
#include "pci/pci_device.h"
#include "pci/pci_root.h"

namespace {

using namespace keel;
using namespace keel::pci;

using keel::fuzz::check;

constexpr uint16_t kVectors = 5;
constexpr uint64_t kWindowStart = 0xc100'0000;
constexpr uint64_t kWindowSize = 0x0100'0000;

// Checks the MSI-X contract: configure() before trigger(), vectors in range.
class CheckingSink final : public MsiVectorSink {
public:
    void configure(uint16_t vector, const MsiMessage& /*message*/) override {
        check(vector < kVectors);
        configured.insert(vector);
    }
    void trigger(uint16_t vector) override {
        check(vector < kVectors);
        check(configured.count(vector) == 1);
    }
    std::set<uint16_t> configured;
};

// A function like virtio-pci's: BAR 0 (64-bit) with the MSI-X table and PBA,
// BAR 2 (32-bit) plain, a vendor capability with a writable byte, MSI-X.
class FuzzFunction final : public PciDevice {
public:
    explicit FuzzFunction(std::shared_ptr<CheckingSink> sink)
        : m_config(PciIdentity{.vendor_id = 0x1af4, .device_id = 0x1041, .class_code = 0x020000}),
          m_msix(
              MsixLayout{
                  .vector_count = kVectors, .table_bar = 0, .table_offset = 0x2000, .pba_bar = 0, .pba_offset = 0x3000},
              std::move(sink)),
          m_table_device(std::make_shared<MsixBarDevice>(m_msix, 0)),
          m_plain_device(std::make_shared<MsixBarDevice>(m_msix, 2)) {
        m_config.add_bar({.index = 0, .size = 0x4000, .kind = BarKind::Memory64, .prefetchable = Prefetchable::Yes});
        m_config.add_bar({.index = 2, .size = 0x1000});
        m_config.set_interrupt_pin(InterruptPin::IntA);
        const std::array<uint8_t, 8> vendor{PCI_CAP_ID_VNDR, 0, 8, 1, 2, 3, 4, 5};
        const std::array<uint8_t, 8> mask{0, 0, 0, 0, 0xff, 0, 0, 0};
        m_config.add_capability(vendor, mask);
        m_msix.add_to(m_config);
    }
    [[nodiscard]] std::string_view name() const override { return "fuzz"; }
    void config_read(uint16_t offset, std::span<uint8_t> data) override {
        check(offset < kExtendedConfigSpaceSize && offset % data.size() == 0);
        m_config.read(offset, data);
    }
    void config_write(uint16_t offset, std::span<const uint8_t> data) override {
        check(offset < kExtendedConfigSpaceSize && offset % data.size() == 0);
        m_config.write(offset, data);
        m_msix.config_written(m_config);
    }
    [[nodiscard]] std::vector<BarRegion> bar_regions() override {
        return {BarRegion{*m_config.bar(0), m_table_device}, BarRegion{*m_config.bar(2), m_plain_device}};
    }
    void bar_assigned(uint8_t index, uint64_t address) override { m_config.set_bar_address(index, address); }

    MsixCapability& msix() { return m_msix; }
    const PciConfigSpace& config() const { return m_config; }

private:
    PciConfigSpace m_config;
    MsixCapability m_msix;
    std::shared_ptr<MsixBarDevice> m_table_device;
    std::shared_ptr<MsixBarDevice> m_plain_device;  // holds no table: reads zeros
};

uint64_t le(std::span<const uint8_t> bytes) {
    uint64_t value = 0;
    for (size_t i = 0; i < bytes.size(); ++i) value |= uint64_t{bytes[i]} << (8 * i);
    return value;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // BAR moves are warned about once per device; thousands of devices a
    // second would bury scripts/fuzz's result lines.
    spdlog::set_level(spdlog::level::off);
    const std::span<const uint8_t> input(data, size);
    auto sink = std::make_shared<CheckingSink>();
    auto function = std::make_shared<FuzzFunction>(sink);
    auto root = std::make_shared<PciRoot>();
    root->add_device_at(1, function);
    Bus mmio(BusKind::Mmio);
    root->assign_bars(mmio, kWindowStart, kWindowSize);
    PciConfigIoPort ports(root);
    PciEcam ecam(root);

    size_t pos = 0;
    while (pos + 3 <= input.size()) {
        const uint8_t op = input[pos];
        const uint64_t offset = input[pos + 1] | uint64_t{input[pos + 2]} << 8;
        pos += 3;
        const size_t width = size_t{1} << ((op >> 3) & 0x03);
        const bool is_write = (op & 0x20) != 0;
        std::array<uint8_t, 8> buf{};
        if (is_write) {
            for (size_t i = 0; i < width && pos < input.size(); ++i) buf[i] = input[pos++];
        }
        const std::span<uint8_t> span(buf.data(), width);
        switch (op & 0x07) {
            case 1: {
                // Scale to 16-byte granules: covers bus 0 (1 MiB) and a bit beyond.
                const uint64_t at = (offset << 4 | (offset >> 12)) & 0x1f'ffff;
                if (is_write) {
                    ecam.write(at, span);
                } else {
                    ecam.read(at, span);
                }
                break;
            }
            case 2:
                if (is_write) {
                    (void)mmio.write(kWindowStart + offset, span);
                } else {
                    (void)mmio.read(kWindowStart + offset, span);
                }
                break;
            case 3: {
                const auto vector = static_cast<uint16_t>(offset % (kVectors + 2));
                const MsixTriggerResult result = function->msix().trigger(vector);
                check((vector < kVectors) == (result != MsixTriggerResult::NoSuchVector));
                break;
            }
            default: {
                const uint64_t port = offset & 0x07;
                if (is_write) {
                    ports.write(port, span.first(width > 4 ? 4 : width));
                } else {
                    ports.read(port, span.first(width > 4 ? 4 : width));
                }
                break;
            }
        }
    }

    // Invariants after the program: identity and BAR flags are read-only,
    // absent functions read all-ones, pending bits only for real vectors.
    std::array<uint8_t, 4> word{};
    ecam.read(1u << 15 | PCI_VENDOR_ID, word);
    check(le(word) == 0x1041'1af4);
    ecam.read(1u << 15 | PCI_BASE_ADDRESS_0, word);
    check((le(word) & 0xf) == (PCI_BASE_ADDRESS_MEM_TYPE_64 | PCI_BASE_ADDRESS_MEM_PREFETCH));
    ecam.read(2u << 15 | PCI_VENDOR_ID, word);
    check(le(word) == 0xffff'ffff);
    ecam.read(0, word);
    check(le(word) == (uint32_t{kHostBridgeIdentity.device_id} << 16 | kHostBridgeIdentity.vendor_id));
    std::array<uint8_t, 8> pba{};
    function->msix().pba_read(0, pba);
    check((le(pba) >> kVectors) == 0);
    check(function->config().bar_address(0) >= kWindowStart);
    return 0;
}
