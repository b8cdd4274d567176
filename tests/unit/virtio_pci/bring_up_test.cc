// A driver's whole life with virtio-rng over virtio-pci, in the order Linux's
// virtio_pci + virtio_rng do it (virtio 1.2 §3.1.1, §4.1.5): reset, ACK,
// DRIVER, features, FEATURES_OK, MSI-X, queue setup, DRIVER_OK, notify,
// used buffer, interrupt; then reset and what survives it. Also through
// PciRoot and the MMIO bus, as keel wires it.

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bus/bus.h"
#include "memory/guest_memory.h"
#include "pci/pci_root.h"
#include "virtio/pci/virtio_pci_transport.h"
#include "virtio/rng_device.h"
#include "virtio_fakes/fake_driver_queue.h"
#include "virtio_fakes/fake_event_registry.h"
#include "virtio_pci/virtio_pci_test_support.h"

namespace keel {
namespace {

using test::PciGuest;
using virtio::kNoVector;
using virtio::VirtioPciLayout;
using virtio::VirtioPciTransport;

constexpr uint8_t kFill = 0x5a;
constexpr uint16_t kQueueSize = 16;
constexpr uint64_t kConfigMsiAddress = 0xfee00000;
constexpr uint64_t kQueueMsiAddress = 0xfee01000;

ssize_t fill_source(std::span<uint8_t> buffer) {
    std::ranges::fill(buffer, kFill);
    return static_cast<ssize_t>(buffer.size());
}

struct RngOverPci {
    GuestMemory memory = GuestMemory::create({{Gpa{0}, 1 << 20}});
    test::FakeEventRegistry events;
    std::shared_ptr<test::RecordingSink> sink = std::make_shared<test::RecordingSink>();
    std::shared_ptr<VirtioPciTransport> transport = std::make_shared<VirtioPciTransport>(
        std::make_shared<virtio::RngDevice>(fill_source), memory, events, sink, "virtio-rng");
    PciGuest guest{*transport};
    test::FakeDriverQueue driver{memory, kQueueSize, Gpa{0x10000}};

    uint64_t counter(const std::string& name) const {
        for (const auto& [n, value] : transport->counters()) {
            if (n == name) return value;
        }
        return UINT64_MAX;
    }

    // §3.1.1 steps 1-6.
    void negotiate() {
        guest.set_status(0);
        REQUIRE(guest.status() == 0);  // vp_reset waits for this
        guest.set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE);
        guest.set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
        // vp_modern_get_features / vp_modern_set_features.
        guest.set_common(VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
        uint64_t features = guest.common(VIRTIO_PCI_COMMON_DF, 4);
        guest.set_common(VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
        features |= guest.common(VIRTIO_PCI_COMMON_DF, 4) << 32;
        REQUIRE((features & (1ull << VIRTIO_F_VERSION_1)) != 0);
        guest.set_common(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
        guest.set_common(VIRTIO_PCI_COMMON_GF, 4, static_cast<uint32_t>(features));
        guest.set_common(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
        guest.set_common(VIRTIO_PCI_COMMON_GF, 4, features >> 32);
        guest.set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
        REQUIRE((guest.status() & VIRTIO_CONFIG_S_FEATURES_OK) != 0);
    }

    // vp_find_vqs_msix with per-queue vectors: config vector 0, queue 0 -> 1.
    // `desc` replaces the descriptor table address (a hostile driver).
    void setup_msix_and_queue(std::optional<Gpa> desc = std::nullopt) {
        guest.enable_msix();
        guest.program_vector(0, kConfigMsiAddress, 0x40);
        guest.program_vector(1, kQueueMsiAddress, 0x41);
        guest.set_common(VIRTIO_PCI_COMMON_MSIX, 2, 0);
        REQUIRE(guest.common(VIRTIO_PCI_COMMON_MSIX, 2) == 0);

        guest.select_queue(0);
        REQUIRE(guest.common(VIRTIO_PCI_COMMON_Q_SIZE, 2) == virtio::RngDevice::kQueueSize);
        REQUIRE(guest.common(VIRTIO_PCI_COMMON_Q_ENABLE, 2) == 0);
        guest.set_common(VIRTIO_PCI_COMMON_Q_SIZE, 2, kQueueSize);
        // vp_iowrite64_twopart: low half, then high half.
        const auto two_part = [&](uint64_t lo_field, Gpa address) {
            guest.set_common(lo_field, 4, static_cast<uint32_t>(address.value));
            guest.set_common(lo_field + 4, 4, address.value >> 32);
        };
        two_part(VIRTIO_PCI_COMMON_Q_DESCLO, desc.value_or(driver.desc_table()));
        two_part(VIRTIO_PCI_COMMON_Q_AVAILLO, driver.avail_ring());
        two_part(VIRTIO_PCI_COMMON_Q_USEDLO, driver.used_ring());
        guest.set_common(VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
        REQUIRE(guest.common(VIRTIO_PCI_COMMON_Q_MSIX, 2) == 1);
        guest.set_common(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
        REQUIRE(guest.common(VIRTIO_PCI_COMMON_Q_ENABLE, 2) == 1);
    }

    void driver_ok() {
        guest.set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
                         VIRTIO_CONFIG_S_DRIVER_OK);
    }

    void bring_up() {
        negotiate();
        setup_msix_and_queue();
        driver_ok();
    }

    // vp_notify: a 16-bit write of the queue index at its notify address.
    void notify(uint16_t queue) {
        guest.select_queue(queue);
        const uint64_t off = guest.common(VIRTIO_PCI_COMMON_Q_NOFF, 2);
        guest.bar_write(VirtioPciLayout::kNotifyOffset + off * VirtioPciLayout::kNotifyOffMultiplier, 2, queue);
    }
};

TEST_CASE("virtio-pci rng bring-up: notify through the BAR fills a buffer and fires the queue's vector") {
    RngOverPci t;
    t.bring_up();
    CHECK(t.guest.status() == (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
                               VIRTIO_CONFIG_S_DRIVER_OK));
    CHECK(t.events.size() == 1);  // the device watches its kick fd
    CHECK(t.events.contains(t.transport->core().kick_fds()[0]));
    // Messages reached the sink when the entries were unmasked.
    CHECK(t.sink->message(0) == pci::MsiMessage{kConfigMsiAddress, 0x40});
    CHECK(t.sink->message(1) == pci::MsiMessage{kQueueMsiAddress, 0x41});

    const uint16_t head = t.driver.submit({}, 64);
    t.notify(0);
    CHECK(t.events.run_ready() >= 1);

    const auto used = t.driver.used_entries();
    REQUIRE(used.size() == 1);
    CHECK(used[0].id == head);
    CHECK(used[0].len == 64);
    CHECK(t.driver.written(head, 64) == std::vector<uint8_t>(64, kFill));
    CHECK(t.sink->triggers() == std::vector<uint16_t>{1});
    CHECK(t.counter("interrupts") == 1);
    CHECK(t.counter("kicks") == 1);
    CHECK(t.counter("bad_accesses") == 0);
}

TEST_CASE("virtio-pci rng serves many requests, each notified and interrupted") {
    RngOverPci t;
    t.bring_up();
    for (int i = 0; i < 40; ++i) {
        const uint16_t head = t.driver.submit({}, 8);
        t.notify(0);
        t.events.run_ready();
        const auto used = t.driver.used_entries();
        REQUIRE(used.size() == 1);
        CHECK(used[0].id == head);
        // Like virtqueue_enable_cb: with EVENT_IDX, ask for the next one.
        t.driver.set_used_event(t.driver.used_idx());
    }
    CHECK(t.sink->triggers_of(1) == 40);
    CHECK(t.sink->triggers_of(0) == 0);
}

TEST_CASE("virtio-pci queue registers are frozen after DRIVER_OK") {
    RngOverPci t;
    t.bring_up();
    t.guest.set_common(VIRTIO_PCI_COMMON_Q_SIZE, 2, 4);
    t.guest.set_common(VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x8000);
    CHECK(t.guest.common(VIRTIO_PCI_COMMON_Q_SIZE, 2) == kQueueSize);
    CHECK(t.guest.common(VIRTIO_PCI_COMMON_Q_DESCLO, 8) == t.driver.desc_table().value);
}

TEST_CASE("virtio-pci reset unmaps the vectors and the queue but keeps the MSI-X table") {
    RngOverPci t;
    t.bring_up();
    t.transport->signal_used_queue(0);
    REQUIRE(t.transport->isr() != 0);
    t.guest.set_status(0);

    CHECK(t.guest.status() == 0);
    CHECK(t.events.size() == 0);  // the device unsubscribed
    CHECK(t.transport->isr() == 0);
    CHECK(t.guest.common(VIRTIO_PCI_COMMON_MSIX, 2) == kNoVector);
    t.guest.select_queue(0);
    CHECK(t.guest.common(VIRTIO_PCI_COMMON_Q_MSIX, 2) == kNoVector);
    CHECK(t.guest.common(VIRTIO_PCI_COMMON_Q_ENABLE, 2) == 0);
    CHECK(t.guest.common(VIRTIO_PCI_COMMON_Q_SIZE, 2) == virtio::RngDevice::kQueueSize);
    CHECK(t.guest.common(VIRTIO_PCI_COMMON_Q_DESCLO, 8) == 0);
    CHECK(t.counter("resets") >= 2);

    // MSI-X is PCI function state: still enabled, entries still programmed.
    const uint64_t entry1 = t.transport->layout().msix_table_offset + PCI_MSIX_ENTRY_SIZE;
    CHECK(t.guest.bar_read(entry1 + PCI_MSIX_ENTRY_LOWER_ADDR, 4) == static_cast<uint32_t>(kQueueMsiAddress));
    CHECK(t.guest.bar_read(entry1 + PCI_MSIX_ENTRY_DATA, 4) == 0x41);
    const uint8_t cap = t.guest.capabilities(PCI_CAP_ID_MSIX).at(0);
    CHECK((t.guest.cfg16(static_cast<uint16_t>(cap + PCI_MSIX_FLAGS)) & PCI_MSIX_FLAGS_ENABLE) != 0);

    // Unmapped after reset: a late notification sends nothing.
    t.sink->clear_triggers();
    t.transport->signal_used_queue(0);
    CHECK(t.sink->triggers().empty());
}

TEST_CASE("virtio-pci rng works again after a reset and a second bring-up") {
    RngOverPci t;
    t.bring_up();
    t.guest.set_status(0);
    test::FakeDriverQueue driver(t.memory, kQueueSize, Gpa{0x40000});  // fresh rings
    t.negotiate();
    // Linux reassigns vectors after every reset; the table is already programmed.
    t.guest.set_common(VIRTIO_PCI_COMMON_MSIX, 2, 0);
    t.guest.select_queue(0);
    t.guest.set_common(VIRTIO_PCI_COMMON_Q_SIZE, 2, kQueueSize);
    t.guest.set_common(VIRTIO_PCI_COMMON_Q_DESCLO, 8, driver.desc_table().value);
    t.guest.set_common(VIRTIO_PCI_COMMON_Q_AVAILLO, 8, driver.avail_ring().value);
    t.guest.set_common(VIRTIO_PCI_COMMON_Q_USEDLO, 8, driver.used_ring().value);
    t.guest.set_common(VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
    t.guest.set_common(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    t.driver_ok();
    t.sink->clear_triggers();

    driver.submit({}, 32);
    t.notify(0);
    t.events.run_ready();
    CHECK(driver.used_entries().size() == 1);
    CHECK(t.sink->triggers() == std::vector<uint16_t>{1});
}

TEST_CASE("virtio-pci invalid ring at DRIVER_OK sets DEVICE_NEEDS_RESET and fires the config vector") {
    RngOverPci t;
    t.negotiate();
    t.setup_msix_and_queue(Gpa{0x7ffff000'00000000});  // not guest RAM
    t.driver_ok();
    CHECK((t.guest.status() & VIRTIO_CONFIG_S_NEEDS_RESET) != 0);
    CHECK(t.sink->triggers() == std::vector<uint16_t>{0});
    CHECK(t.guest.read_isr() == VIRTIO_PCI_ISR_CONFIG);
}

TEST_CASE("virtio-pci rng behind PciRoot answers on the MMIO bus at its assigned BAR") {
    RngOverPci t;
    pci::PciRoot root;
    const uint8_t slot = root.add_device(t.transport);
    Bus mmio(BusKind::Mmio);
    root.assign_bars(mmio, 0xe0000000, 0x10000000);
    const std::optional<Gpa> bar = t.transport->bar_address();
    REQUIRE(bar.has_value());

    // Config space through the root: vendor/device as Linux's PCI scan sees them.
    std::array<uint8_t, 4> id{};
    root.config_read(pci::PciAddress{0, slot, 0}, PCI_VENDOR_ID, id);
    CHECK(id == std::array<uint8_t, 4>{0xf4, 0x1a, 0x44, 0x10});

    // The MMIO bus reaches the common configuration.
    std::array<uint8_t, 2> num_queues{};
    CHECK(mmio.read(bar->value + VIRTIO_PCI_COMMON_NUMQ, num_queues));
    CHECK(num_queues == std::array<uint8_t, 2>{1, 0});

    // The ioeventfd address is the notify address on the bus; a write that
    // reaches keel instead signals the same fd.
    const auto ioevents = t.transport->ioevents();
    REQUIRE(ioevents.size() == 1);
    const std::array<uint8_t, 2> zero{};
    CHECK(mmio.write(ioevents[0].address.value, zero));
    uint64_t count = 0;
    CHECK(::read(ioevents[0].fd, &count, sizeof count) == sizeof count);
}

}  // namespace
}  // namespace keel
