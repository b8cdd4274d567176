#include "api/api_mailbox.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "common/error.h"

namespace keel::api {

ApiMailbox::ApiMailbox() : m_wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!m_wake.valid()) throw_errno("eventfd");
}

ApiResponse ApiMailbox::submit(ApiAction action) {
    std::future<ApiResponse> answer;
    {
        const std::lock_guard guard(m_lock);
        if (m_closed) return fault(*m_closed, 503);
        m_pending.push_back(Pending{std::move(action), {}});
        answer = m_pending.back().answer.get_future();
    }
    const uint64_t one = 1;
    (void)!::write(m_wake.get(), &one, sizeof one);
    return answer.get();
}

std::optional<ApiMailbox::Pending> ApiMailbox::take() {
    const std::lock_guard guard(m_lock);
    if (m_pending.empty()) return std::nullopt;
    Pending pending = std::move(m_pending.front());
    m_pending.pop_front();
    return pending;
}

void ApiMailbox::clear_wake() {
    uint64_t count = 0;
    (void)!::read(m_wake.get(), &count, sizeof count);
}

void ApiMailbox::close(const std::string& message) {
    const std::lock_guard guard(m_lock);
    m_closed = message;
    for (auto& pending : m_pending) pending.answer.set_value(fault(message, 503));
    m_pending.clear();
}

}  // namespace keel::api
