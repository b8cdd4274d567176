#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

#include "bus/bus_device.h"

namespace keel {

// Where a boot-progress mark written by the guest came from.
enum class BootMarkSource : uint8_t {
    Mmio,      // Firecracker-compatible: byte 123 at x86::kBootTimerMmio
    PostCode,  // Cloud Hypervisor-compatible: any byte at I/O port 0x80
};

// "mmio" / "port80": the names VmStats reports.
[[nodiscard]] const char* boot_mark_source_name(BootMarkSource source);

struct BootMark {
    BootMarkSource source;
    uint8_t code;    // the byte written (always 123 for Mmio)
    uint64_t at_ns;  // CLOCK_MONOTONIC when the vCPU exit reached keel
};

// Receives marks on vCPU threads, possibly several at once: must be thread-safe.
using BootMarkSink = std::function<void(const BootMark&)>;
// CLOCK_MONOTONIC in nanoseconds; replaceable for tests.
using BootClock = std::function<uint64_t()>;
[[nodiscard]] uint64_t boot_clock_monotonic_ns();

// Keeps the first `limit` marks of one source and counts the rest. Guests can
// write these registers at will (Linux's io_delay writes port 0x80 on every
// outb_p), so recording is bounded and never logs.
class BootMarkRecorder {
public:
    BootMarkRecorder(BootMarkSource source, size_t limit, BootMarkSink sink, BootClock clock);
    void record(uint8_t code);
    [[nodiscard]] uint64_t recorded() const;
    [[nodiscard]] uint64_t dropped() const;

private:
    BootMarkSource m_source;
    size_t m_limit;
    BootMarkSink m_sink;
    BootClock m_clock;
    std::atomic<uint64_t> m_seen{0};
};

// Firecracker's boot-timer device: insert at x86::kBootTimerMmio for
// x86::kBootTimerMmioSize bytes. A one-byte write of x86::kBootTimerMagic at
// offset 0 marks "guest userspace started"; everything else is ignored and
// reads return zeros.
class BootTimerMmio final : public BusDevice {
public:
    static constexpr size_t kMaxMarks = 16;

    explicit BootTimerMmio(BootMarkSink sink, BootClock clock = boot_clock_monotonic_ns);
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;
    [[nodiscard]] const BootMarkRecorder& marks() const { return m_recorder; }

private:
    BootMarkRecorder m_recorder;
};

// Cloud Hypervisor's debug port: insert at x86::kPostCodePort for one port.
// Every byte written is a mark carrying that code; the first kMaxMarks are
// kept (its own budget, so io_delay noise cannot crowd out the MMIO mark).
// Reads return 0.
class PostCodePort final : public BusDevice {
public:
    static constexpr size_t kMaxMarks = 64;

    explicit PostCodePort(BootMarkSink sink, BootClock clock = boot_clock_monotonic_ns);
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;
    [[nodiscard]] const BootMarkRecorder& marks() const { return m_recorder; }

private:
    BootMarkRecorder m_recorder;
};

}  // namespace keel
