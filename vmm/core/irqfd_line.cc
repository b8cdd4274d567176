#include "core/irqfd_line.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "common/error.h"

namespace keel {

namespace {

UniqueFd make_eventfd() {
    UniqueFd fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd.valid()) throw_errno("eventfd");
    return fd;
}

void signal_eventfd(int fd) {
    const uint64_t one = 1;
    // EAGAIN only when the counter would overflow: the interrupt is pending anyway.
    (void)!::write(fd, &one, sizeof one);
}

}  // namespace

IrqfdLine::IrqfdLine(const Vm& vm, uint32_t gsi) : m_eventfd(make_eventfd()) {
    vm.register_irqfd(m_eventfd.get(), gsi);
}

void IrqfdLine::trigger() { signal_eventfd(m_eventfd.get()); }

ResampledIrqfdLine::ResampledIrqfdLine(const Vm& vm, uint32_t gsi, EventRegistry& events)
    : m_eventfd(make_eventfd()), m_resample_eventfd(make_eventfd()), m_events(events) {
    vm.register_resampled_irqfd(m_eventfd.get(), m_resample_eventfd.get(), gsi);
    m_events.add(m_resample_eventfd.get(), [this] { on_resample(); });
}

ResampledIrqfdLine::~ResampledIrqfdLine() { m_events.remove(m_resample_eventfd.get()); }

void ResampledIrqfdLine::trigger() { signal_eventfd(m_eventfd.get()); }

void ResampledIrqfdLine::set_level_source(LevelSource asserted) { m_asserted = std::move(asserted); }

void ResampledIrqfdLine::on_resample() {
    uint64_t count = 0;
    if (::read(m_resample_eventfd.get(), &count, sizeof count) != sizeof count) return;
    if (m_asserted && m_asserted()) {
        m_reasserted.fetch_add(1, std::memory_order_relaxed);
        trigger();
    }
}

}  // namespace keel
