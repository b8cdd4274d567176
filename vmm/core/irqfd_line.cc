#include "core/irqfd_line.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "common/error.h"

namespace keel {

IrqfdLine::IrqfdLine(const Vm& vm, uint32_t gsi) : m_eventfd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!m_eventfd.valid()) throw_errno("eventfd");
    vm.register_irqfd(m_eventfd.get(), gsi);
}

void IrqfdLine::trigger() {
    const uint64_t one = 1;
    // EAGAIN only when the counter would overflow: the interrupt is pending anyway.
    (void)!::write(m_eventfd.get(), &one, sizeof one);
}

}  // namespace keel
