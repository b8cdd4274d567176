// The common configuration structure (virtio 1.2 §4.1.4.3) against the
// spec and the UAPI struct, its access widths (§4.1.3.1), the MSI-X vector
// registers (§4.1.5.1.2), notification, ISR and device configuration
// structures, and hostile accesses anywhere in the BAR.

#include "virtio/pci/common_cfg.h"

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstddef>
#include <memory>
#include <string>

#include "memory/guest_memory.h"
#include "virtio/pci/virtio_pci_transport.h"
#include "virtio_fakes/fake_event_registry.h"
#include "virtio_pci/virtio_pci_test_support.h"

namespace keel {
namespace {

using test::PciGuest;
using virtio::CommonAccess;
using virtio::kCommonRegisters;
using virtio::kNoVector;
using virtio::VirtioPciLayout;
using virtio::VirtioPciTransport;

// A function carrying the two-queue ConfigDevice (3 MSI-X vectors).
struct Function {
    GuestMemory memory = GuestMemory::create({{Gpa{0}, 1 << 20}});
    test::FakeEventRegistry events;
    std::shared_ptr<test::ConfigDevice> device = std::make_shared<test::ConfigDevice>();
    std::shared_ptr<test::RecordingSink> sink = std::make_shared<test::RecordingSink>();
    std::shared_ptr<VirtioPciTransport> transport =
        std::make_shared<VirtioPciTransport>(device, memory, events, sink, "virtio-cfgdev");
    PciGuest guest{*transport};

    uint64_t counter(const std::string& name) const {
        for (const auto& [n, value] : transport->counters()) {
            if (n == name) return value;
        }
        FAIL("no counter " << name);
        return 0;
    }
    bool kicked(uint16_t queue) const {
        uint64_t count = 0;
        return ::read(transport->core().kick_fds()[queue], &count, sizeof count) == sizeof count;
    }
};

// The spec's table, field by field: offset and width from struct
// virtio_pci_common_cfg, access as the spec marks it.
TEST_CASE("virtio-pci common configuration table matches struct virtio_pci_common_cfg") {
    struct Spec {
        size_t offset;
        size_t width;
        CommonAccess access;
    };
    // clang-format off
#define FIELD(f, a) Spec{offsetof(virtio_pci_common_cfg, f), sizeof(virtio_pci_common_cfg::f), CommonAccess::a}
    // clang-format on
    const Spec spec[] = {
        FIELD(device_feature_select, ReadWrite), FIELD(device_feature, ReadOnly),
        FIELD(guest_feature_select, ReadWrite),  FIELD(guest_feature, ReadWrite),
        FIELD(msix_config, ReadWrite),           FIELD(num_queues, ReadOnly),
        FIELD(device_status, ReadWrite),         FIELD(config_generation, ReadOnly),
        FIELD(queue_select, ReadWrite),          FIELD(queue_size, ReadWrite),
        FIELD(queue_msix_vector, ReadWrite),     FIELD(queue_enable, ReadWrite),
        FIELD(queue_notify_off, ReadOnly),       FIELD(queue_desc_lo, ReadWrite),
        FIELD(queue_desc_hi, ReadWrite),         FIELD(queue_avail_lo, ReadWrite),
        FIELD(queue_avail_hi, ReadWrite),        FIELD(queue_used_lo, ReadWrite),
        FIELD(queue_used_hi, ReadWrite),
    };
#undef FIELD
    REQUIRE(std::size(spec) == kCommonRegisters.size());
    size_t covered = 0;
    for (size_t i = 0; i < kCommonRegisters.size(); ++i) {
        INFO(kCommonRegisters[i].name);
        CHECK(kCommonRegisters[i].offset == spec[i].offset);
        CHECK(kCommonRegisters[i].width == spec[i].width);
        CHECK(kCommonRegisters[i].access == spec[i].access);
        CHECK(virtio::find_common_register(spec[i].offset) == &kCommonRegisters[i]);
        covered += kCommonRegisters[i].width;
    }
    CHECK(covered == sizeof(virtio_pci_common_cfg));  // no holes, no overlaps
}

TEST_CASE("virtio-pci common configuration fields read their reset values") {
    Function f;
    for (const virtio::CommonRegister& reg : kCommonRegisters) {
        if (!reg.reset_value) continue;
        INFO(reg.name);
        CHECK(f.guest.common(reg.offset, reg.width) == *reg.reset_value);
    }
    // The device-defined ones, with queue 0 selected.
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_NUMQ, 2) == 2);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_Q_SIZE, 2) == 16);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_DF, 4) == 1);
    f.guest.set_common(VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_DF, 4) == ((1u << (VIRTIO_F_VERSION_1 - 32)) | (1u << 3)));
    f.guest.set_common(VIRTIO_PCI_COMMON_DFSELECT, 4, 2);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_DF, 4) == 0);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_CFGGENERATION, 1) == 0);
}

TEST_CASE("virtio-pci read-only common fields ignore writes") {
    Function f;
    f.guest.set_common(VIRTIO_PCI_COMMON_DF, 4, 0);
    f.guest.set_common(VIRTIO_PCI_COMMON_NUMQ, 2, 7);
    f.guest.set_common(VIRTIO_PCI_COMMON_CFGGENERATION, 1, 9);
    f.guest.set_common(VIRTIO_PCI_COMMON_Q_NOFF, 2, 5);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_DF, 4) == 1);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_NUMQ, 2) == 2);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_CFGGENERATION, 1) == 0);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_Q_NOFF, 2) == 0);
    CHECK(f.counter("bad_accesses") == 4);
}

TEST_CASE("virtio-pci queue_notify_off is the queue index and each queue notifies at its own address") {
    Function f;
    for (uint16_t q = 0; q < 2; ++q) {
        f.guest.select_queue(q);
        const auto off = static_cast<uint16_t>(f.guest.common(VIRTIO_PCI_COMMON_Q_NOFF, 2));
        CHECK(off == q);
        f.guest.bar_write(VirtioPciLayout::kNotifyOffset + uint64_t{off} * 4, 2, q);
        CHECK(f.kicked(q));
        CHECK_FALSE(f.kicked(static_cast<uint16_t>(1 - q)));
    }
    // A 4-byte write is a notification too (it would miss the 2-byte ioeventfd).
    f.guest.bar_write(VirtioPciLayout::kNotifyOffset + 4, 4, 1);
    CHECK(f.kicked(1));
    f.guest.select_queue(5);  // no such queue
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_Q_NOFF, 2) == 0);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_Q_SIZE, 2) == 0);
    CHECK(f.counter("kicks") == 3);
}

TEST_CASE("virtio-pci notify accesses of the wrong shape do not notify") {
    Function f;
    f.guest.bar_write(VirtioPciLayout::kNotifyOffset, 1, 0);      // 1 byte
    f.guest.bar_write(VirtioPciLayout::kNotifyOffset + 2, 2, 0);  // not at a queue's address
    f.guest.bar_write(VirtioPciLayout::kNotifyOffset + 8, 2, 0);  // past the last queue
    f.guest.bar_write(VirtioPciLayout::kNotifyOffset, 8, 0);      // 8 bytes
    CHECK(f.guest.bar_read(VirtioPciLayout::kNotifyOffset, 2) == 0);
    CHECK_FALSE(f.kicked(0));
    CHECK_FALSE(f.kicked(1));
    CHECK(f.counter("bad_accesses") == 5);
}

TEST_CASE("virtio-pci queue addresses take two 32-bit halves or one 64-bit access") {
    Function f;
    f.guest.select_queue(1);
    f.guest.set_common(VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x12345000);
    f.guest.set_common(VIRTIO_PCI_COMMON_Q_DESCHI, 4, 0x1);
    f.guest.set_common(VIRTIO_PCI_COMMON_Q_AVAILLO, 8, 0x0000000200003000);
    f.guest.set_common(VIRTIO_PCI_COMMON_Q_USEDLO, 4, 0x4000);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_Q_DESCLO, 8) == 0x112345000);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_Q_AVAILLO, 4) == 0x3000);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_Q_AVAILHI, 4) == 0x2);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_Q_USEDLO, 8) == 0x4000);
    f.guest.select_queue(0);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_Q_DESCLO, 8) == 0);
    // A 64-bit access at a high half is not a field.
    f.guest.set_common(VIRTIO_PCI_COMMON_Q_DESCHI, 8, ~0ull);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_Q_DESCHI, 8) == 0);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_Q_DESCLO, 8) == 0);
}

TEST_CASE("virtio-pci common fields accessed with the wrong width read 0 and ignore writes") {
    Function f;
    f.guest.set_common(VIRTIO_PCI_COMMON_STATUS, 4, VIRTIO_CONFIG_S_ACKNOWLEDGE);  // 4 bytes at an 8-bit field
    CHECK(f.guest.status() == 0);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_NUMQ, 4) == 0);  // num_queues + status + generation
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_Q_SIZE, 1) == 0);
    f.guest.set_common(VIRTIO_PCI_COMMON_DFSELECT, 2, 1);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_DFSELECT, 4) == 0);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_DF + 1, 1) == 0);  // inside a field
    CHECK(f.counter("bad_accesses") == 5);
}

TEST_CASE("virtio-pci queue_notify_data and queue_reset do not exist without their features") {
    Function f;
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_Q_NDATA, 2) == 0);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_Q_RESET, 2) == 0);
    f.guest.set_common(VIRTIO_PCI_COMMON_Q_RESET, 2, 1);
    CHECK(f.counter("bad_accesses") == 3);
}

TEST_CASE("virtio-pci MSI-X vector registers read NO_VECTOR for a vector the table does not have") {
    Function f;  // 2 queues: vectors 0..2
    f.guest.set_common(VIRTIO_PCI_COMMON_MSIX, 2, 2);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_MSIX, 2) == 2);
    f.guest.set_common(VIRTIO_PCI_COMMON_MSIX, 2, 3);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_MSIX, 2) == kNoVector);
    f.guest.set_common(VIRTIO_PCI_COMMON_MSIX, 2, 0x7ff);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_MSIX, 2) == kNoVector);
    f.guest.select_queue(1);
    f.guest.set_common(VIRTIO_PCI_COMMON_Q_MSIX, 2, 0);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_Q_MSIX, 2) == 0);
    f.guest.set_common(VIRTIO_PCI_COMMON_Q_MSIX, 2, 0x8000);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_Q_MSIX, 2) == kNoVector);
    f.guest.set_common(VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
    f.guest.set_common(VIRTIO_PCI_COMMON_Q_MSIX, 2, kNoVector);  // unmapping is always allowed
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_Q_MSIX, 2) == kNoVector);
    f.guest.select_queue(9);  // no such queue
    f.guest.set_common(VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_Q_MSIX, 2) == kNoVector);
}

TEST_CASE("virtio-pci unmapped events set the ISR but send no MSI-X message") {
    Function f;
    f.guest.enable_msix();
    f.guest.program_vector(0, 0xfee00000, 0x41);
    f.transport->signal_used_queue(0);
    f.transport->signal_config_change();
    CHECK(f.sink->triggers().empty());
    CHECK(f.transport->isr() == (1 | VIRTIO_PCI_ISR_CONFIG));
    CHECK(f.counter("interrupts") == 0);
    f.transport->signal_used_queue(7);  // no such queue: ignored
    CHECK(f.sink->triggers().empty());
}

TEST_CASE("virtio-pci notifications while MSI-X is disabled are counted as dropped") {
    Function f;
    f.guest.set_common(VIRTIO_PCI_COMMON_MSIX, 2, 0);
    f.transport->signal_config_change();
    CHECK(f.sink->triggers().empty());
    CHECK(f.counter("interrupts_dropped") == 1);
    CHECK(f.counter("interrupts") == 0);
}

TEST_CASE("virtio-pci masked vector is held pending and sent on unmask") {
    Function f;
    f.guest.enable_msix();
    f.guest.set_common(VIRTIO_PCI_COMMON_MSIX, 2, 2);
    f.transport->signal_config_change();  // entry 2 still masked (reset state)
    CHECK(f.sink->triggers().empty());
    CHECK(f.counter("interrupts") == 1);
    f.guest.program_vector(2, 0xfee01000, 0x51);
    CHECK(f.sink->triggers() == std::vector<uint16_t>{2});
    CHECK(f.sink->message(2) == pci::MsiMessage{0xfee01000, 0x51});
}

TEST_CASE("virtio-pci configuration change sets ISR bit 1, bumps the generation and fires the config vector") {
    Function f;
    f.guest.enable_msix();
    f.guest.program_vector(0, 0xfee00000, 0x40);
    f.guest.set_common(VIRTIO_PCI_COMMON_MSIX, 2, 0);
    f.transport->signal_config_change();
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_CFGGENERATION, 1) == 1);
    CHECK(f.sink->triggers() == std::vector<uint16_t>{0});
    CHECK(f.guest.read_isr() == VIRTIO_PCI_ISR_CONFIG);
    CHECK(f.guest.read_isr() == 0);
    CHECK(f.counter("interrupts") == 1);
}

TEST_CASE("virtio-pci DEVICE_NEEDS_RESET is announced once through the config vector") {
    Function f;
    f.guest.enable_msix();
    f.guest.program_vector(0, 0xfee00000, 0x40);
    f.guest.set_common(VIRTIO_PCI_COMMON_MSIX, 2, 0);
    f.transport->set_needs_reset();
    f.transport->set_needs_reset();
    CHECK((f.guest.status() & VIRTIO_CONFIG_S_NEEDS_RESET) != 0);
    CHECK(f.sink->triggers() == std::vector<uint16_t>{0});
    CHECK(f.transport->isr() == VIRTIO_PCI_ISR_CONFIG);
    CHECK(f.guest.common(VIRTIO_PCI_COMMON_CFGGENERATION, 1) == 0);
}

TEST_CASE("virtio-pci ISR is one byte that a read returns and clears") {
    Function f;
    f.transport->signal_used_queue(1);
    CHECK(f.guest.bar_read(VirtioPciLayout::kIsrOffset, 2) == 0);  // wrong width: no clear
    CHECK(f.guest.bar_read(VirtioPciLayout::kIsrOffset + 1, 1) == 0);
    f.guest.bar_write(VirtioPciLayout::kIsrOffset, 1, 0);  // read-only
    CHECK(f.guest.read_isr() == 1);
    CHECK(f.guest.read_isr() == 0);
}

TEST_CASE("virtio-pci device configuration takes naturally aligned 1, 2, 4 and 8-byte accesses") {
    Function f;
    const uint64_t base = VirtioPciLayout::kDeviceOffset;
    CHECK(f.guest.bar_read(base, 1) == 1);
    CHECK(f.guest.bar_read(base + 2, 2) == 0x0403);
    CHECK(f.guest.bar_read(base + 4, 4) == 0x08070605);
    CHECK(f.guest.bar_read(base, 8) == 0x0807060504030201);
    CHECK(f.guest.bar_read(base + 1, 2) == 0);      // misaligned
    CHECK(f.guest.bar_read(base + 0x800, 4) == 0);  // past the device's config: zeros
    f.guest.bar_write(base + 4, 4, 0xaabbccdd);
    CHECK(f.device->config()[4] == 0xdd);
    f.guest.bar_write(base + 3, 4, 0);  // misaligned: ignored
    CHECK(f.device->config()[3] == 4);
    CHECK(f.counter("bad_accesses") == 2);
}

TEST_CASE("virtio-pci BAR accesses between and past the structures are harmless") {
    Function f;
    const uint64_t size = f.transport->layout().bar_size;
    const uint64_t offsets[] = {virtio::kCommonCfgSize, 0x0ffc,    0x1001, 0x2ffe, 0x3800, size - 1, size - 4, size,
                                UINT64_MAX - 3,         UINT64_MAX};
    for (const uint64_t offset : offsets) {
        for (const size_t width : {size_t{1}, size_t{2}, size_t{4}, size_t{8}}) {
            INFO("offset " << offset << " width " << width);
            CHECK(f.guest.bar_read(offset, width) == 0);
            f.guest.bar_write(offset, width, ~0ull);
        }
    }
    CHECK(f.guest.status() == 0);
    CHECK(f.counter("bad_accesses") > 0);
    // An empty access does nothing either.
    f.transport->bar_read(0, {});
    f.transport->bar_write(0, {});
}

}  // namespace
}  // namespace keel
