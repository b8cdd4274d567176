#pragma once

// The API thread's requests, carried to the VMM thread (the one that owns the
// VM: its event loop answers them between device events, as Firecracker's
// VMM thread does). submit() blocks the API thread until the answer is ready;
// the VMM thread learns of work through fd() becoming readable.

#include <deque>
#include <future>
#include <mutex>
#include <string>

#include "api/api_request.h"
#include "common/fd.h"

namespace keel::api {

class ApiMailbox {
public:
    ApiMailbox();

    // API thread. After close(), answers at once with close()'s fault.
    [[nodiscard]] ApiResponse submit(ApiAction action);

    // VMM thread: readable while requests wait.
    [[nodiscard]] int fd() const { return m_wake.get(); }
    // VMM thread: answers every waiting request with `handle` (which must not
    // throw), in arrival order.
    template <class Handle>
    void drain(Handle&& handle) {
        clear_wake();
        while (auto pending = take()) pending->answer.set_value(handle(pending->action));
    }

    // Nobody will answer any more (the VM stopped, keel is exiting): waiting
    // and later requests get `message` as a 503 fault.
    void close(const std::string& message);

private:
    struct Pending {
        ApiAction action;
        std::promise<ApiResponse> answer;
    };
    [[nodiscard]] std::optional<Pending> take();
    void clear_wake();

    std::mutex m_lock;
    std::deque<Pending> m_pending;
    std::optional<std::string> m_closed;
    UniqueFd m_wake;  // eventfd
};

}  // namespace keel::api
