#pragma once

// The API socket: HTTP/1.1 over a Unix stream socket, served by a thread of
// its own (as Firecracker's fc_api thread), so that a slow or hostile client
// never stalls the VM's event loop. Requests are handed to `dispatch` one at a
// time, in the order they arrived on each connection; the answers go back in
// that order (pipelining works). The socket file is created here and removed
// when the server ends.

#include <functional>
#include <string>
#include <thread>

#include "security/seccomp_filter.h"

#include "api/api_request.h"
#include "api/http_request.h"
#include "common/fd.h"

namespace keel::api {

struct ApiServerLimits {
    HttpLimits http{};
    size_t max_connections = 10;  // Firecracker's: the next one gets a 503 and is closed
};

// "HTTP/1.1 200 OK\r\nServer: keel\r\n...": the bytes of one response.
// `close` adds "Connection: close", otherwise the connection is kept alive.
[[nodiscard]] std::string serialize_response(const ApiResponse& response, bool close);

class ApiServer {
public:
    using Dispatch = std::function<ApiResponse(const HttpRequest&)>;

    // Binds and listens on `socket_path` (which must not exist yet: a second
    // keel on the same path is refused rather than silently taking it over)
    // and starts serving. Throws keel::Error naming the path.
    // The serving thread loads the API role's seccomp filter before it
    // accepts a connection; a filter that cannot be loaded is thrown here.
    ApiServer(std::string socket_path, ApiServerLimits limits, Dispatch dispatch,
              security::SeccompMode seccomp = security::kDefaultSeccompMode);
    ~ApiServer();
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    [[nodiscard]] const std::string& socket_path() const { return m_path; }

private:
    void serve();

    std::string m_path;
    ApiServerLimits m_limits;
    Dispatch m_dispatch;
    UniqueFd m_listener;
    UniqueFd m_wake;  // eventfd: the destructor ends serve()
    std::thread m_thread;
};

}  // namespace keel::api
