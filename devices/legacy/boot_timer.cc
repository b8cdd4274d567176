#include "legacy/boot_timer.h"

#include <time.h>

#include <algorithm>
#include <utility>

#include "arch/x86_64/layout.h"

namespace keel {

const char* boot_mark_source_name(BootMarkSource source) {
    switch (source) {
        case BootMarkSource::Mmio: return "mmio";
        case BootMarkSource::PostCode: return "port80";
    }
    return "unknown";
}

uint64_t boot_clock_monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

BootMarkRecorder::BootMarkRecorder(BootMarkSource source, size_t limit, BootMarkSink sink, BootClock clock)
    : m_source(source), m_limit(limit), m_sink(std::move(sink)), m_clock(std::move(clock)) {}

void BootMarkRecorder::record(uint8_t code) {
    // Take the timestamp first: it is what the mark is for.
    const uint64_t now = m_clock ? m_clock() : 0;
    const uint64_t index = m_seen.fetch_add(1, std::memory_order_relaxed);
    if (index >= m_limit || !m_sink) return;
    m_sink(BootMark{m_source, code, now});
}

uint64_t BootMarkRecorder::recorded() const {
    return std::min<uint64_t>(m_seen.load(std::memory_order_relaxed), m_limit);
}

uint64_t BootMarkRecorder::dropped() const {
    const uint64_t seen = m_seen.load(std::memory_order_relaxed);
    return seen > m_limit ? seen - m_limit : 0;
}

BootTimerMmio::BootTimerMmio(BootMarkSink sink, BootClock clock)
    : m_recorder(BootMarkSource::Mmio, kMaxMarks, std::move(sink), std::move(clock)) {}

void BootTimerMmio::read(uint64_t /*offset*/, std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), uint8_t{0});
}

void BootTimerMmio::write(uint64_t offset, std::span<const uint8_t> data) {
    // Firecracker's contract, exactly: one byte, offset 0, value 123.
    if (offset == 0 && data.size() == 1 && data[0] == x86::kBootTimerMagic) m_recorder.record(data[0]);
}

PostCodePort::PostCodePort(BootMarkSink sink, BootClock clock)
    : m_recorder(BootMarkSource::PostCode, kMaxMarks, std::move(sink), std::move(clock)) {}

void PostCodePort::read(uint64_t /*offset*/, std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), uint8_t{0});
}

void PostCodePort::write(uint64_t offset, std::span<const uint8_t> data) {
    // A wider OUT to port 0x80 carries its code in the low byte.
    if (offset == 0 && !data.empty()) m_recorder.record(data[0]);
}

}  // namespace keel
