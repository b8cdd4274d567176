#include "api/api_server.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <list>
#include <vector>

#include "common/error.h"

namespace keel::api {

namespace {

// A client that pipelines faster than it reads its answers stops being read
// once this much is waiting for it.
constexpr size_t kMaxPendingOutput = 1024 * 1024;
constexpr size_t kReadChunk = 16 * 1024;

std::string_view reason_phrase(int status) {
    switch (status) {
        case 100:
            return "Continue";
        case 200:
            return "OK";
        case 204:
            return "No Content";
        case 400:
            return "Bad Request";
        case 404:
            return "Not Found";
        case 500:
            return "Internal Server Error";
        case 503:
            return "Service Unavailable";
        default:
            return "";
    }
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
            return false;
        }
    }
    return true;
}

// HTTP/1.1 keeps the connection unless the client says close; HTTP/1.0
// closes it unless the client asks to keep it.
bool wants_close(const HttpRequest& request) {
    const auto connection = request.header("Connection");
    if (request.http10) return !connection || !equals_ignoring_case(*connection, "keep-alive");
    return connection && equals_ignoring_case(*connection, "close");
}

struct Connection {
    UniqueFd fd{};
    std::string in{};
    std::string out{};
    bool continue_sent = false;
    bool close_after_flush = false;
    bool dead = false;
};

}  // namespace

std::string serialize_response(const ApiResponse& response, bool close) {
    std::string out = "HTTP/1.1 " + std::to_string(response.status) + " " +
                      std::string(reason_phrase(response.status)) +
                      "\r\nServer: keel\r\nConnection: " + (close ? "close" : "keep-alive") + "\r\n";
    if (response.status != 204) {
        out += "Content-Type: " + response.content_type +
               "\r\nContent-Length: " + std::to_string(response.body.size()) + "\r\n";
    }
    out += "\r\n";
    if (response.status != 204) out += response.body;
    return out;
}

ApiServer::ApiServer(std::string socket_path, ApiServerLimits limits, Dispatch dispatch, security::SeccompMode seccomp)
    : m_path(std::move(socket_path)), m_limits(limits), m_dispatch(std::move(dispatch)) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (m_path.empty() || m_path.size() >= sizeof address.sun_path) {
        throw Error("API socket path '" + m_path + "': must be 1 to " + std::to_string(sizeof address.sun_path - 1) +
                    " bytes long");
    }
    struct stat existing {};
    if (::lstat(m_path.c_str(), &existing) == 0) {
        throw Error("API socket '" + m_path + "' already exists: another keel may be using it (remove it if not)");
    }
    std::memcpy(address.sun_path, m_path.c_str(), m_path.size());
    m_listener = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!m_listener.valid()) throw_errno("cannot create API socket '" + m_path + "'");
    if (::bind(m_listener.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        throw_errno("cannot create API socket '" + m_path + "'");
    }
    if (::listen(m_listener.get(), 16) != 0) {
        const int error = errno;
        ::unlink(m_path.c_str());
        throw_errno("cannot listen on API socket '" + m_path + "'", error);
    }
    m_wake = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!m_wake.valid()) {
        const int error = errno;
        ::unlink(m_path.c_str());
        throw_errno("eventfd for the API server", error);
    }
    // The thread takes no signals: SIGINT/SIGTERM/SIGHUP belong to the VMM
    // thread's signalfd (blocked there later), and a signal's default action
    // taken here would end keel without removing the socket.
    sigset_t all, previous;
    sigfillset(&all);
    // Except SIGSYS, a seccomp violation's: the kernel resets a blocked one to
    // its default action, which would skip the report that names the call.
    sigdelset(&all, SIGSYS);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    std::promise<std::string> filter_loaded;
    auto filter_error = filter_loaded.get_future();
    m_thread = std::thread([this, seccomp, &filter_loaded] {
        pthread_setname_np(pthread_self(), "keel-api");
        try {
            security::install_thread_filter(security::ThreadRole::Api, seccomp);
        } catch (const Error& e) {
            filter_loaded.set_value(e.what());
            return;
        }
        filter_loaded.set_value({});
        serve();
    });
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    if (auto error = filter_error.get(); !error.empty()) {
        m_thread.join();
        ::unlink(m_path.c_str());
        throw Error(error);
    }
}

ApiServer::~ApiServer() {
    const uint64_t one = 1;
    (void)!::write(m_wake.get(), &one, sizeof one);
    if (m_thread.joinable()) m_thread.join();
    ::unlink(m_path.c_str());
}

void ApiServer::serve() {
    std::list<Connection> connections;

    const auto answer = [&](Connection& c) {
        for (;;) {
            auto result = take_request(c.in, m_limits.http);
            if (std::holds_alternative<HttpIncomplete>(result)) return;
            if (const auto* waiting = std::get_if<HttpAwaitingBody>(&result)) {
                if (waiting->expects_continue && !c.continue_sent) {
                    c.out += "HTTP/1.1 100 Continue\r\n\r\n";
                    c.continue_sent = true;
                }
                return;
            }
            if (const auto* error = std::get_if<HttpParseError>(&result)) {
                // The stream cannot be framed any more: answer, drop what is buffered, keep the connection.
                c.out += serialize_response(fault(error->message), false);
                c.in.clear();
                c.continue_sent = false;
                return;
            }
            const auto& request = std::get<HttpRequest>(result);
            c.continue_sent = false;
            ApiResponse response;
            try {
                response = m_dispatch(request);
            } catch (const std::exception& e) {
                response = fault(std::string("internal error: ") + e.what(), 500);
            }
            const bool close = wants_close(request);
            c.out += serialize_response(response, close);
            if (close) {
                c.close_after_flush = true;
                c.in.clear();
                return;
            }
        }
    };

    std::vector<pollfd> fds;
    std::vector<Connection*> polled;
    for (;;) {
        fds.assign({{m_wake.get(), POLLIN, 0}, {m_listener.get(), POLLIN, 0}});
        polled.clear();
        for (auto& c : connections) {
            short events = 0;
            if (!c.close_after_flush && c.out.size() < kMaxPendingOutput) events |= POLLIN;
            if (!c.out.empty()) events |= POLLOUT;
            fds.push_back({c.fd.get(), events, 0});
            polled.push_back(&c);
        }
        if (::poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR) continue;
            spdlog::error("API server: poll failed ({}); the API stops answering", std::strerror(errno));
            return;
        }
        if (fds[0].revents != 0) return;
        if (fds[1].revents & POLLIN) {
            UniqueFd client(::accept4(m_listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
            if (client.valid()) {
                if (connections.size() >= m_limits.max_connections) {
                    const auto busy = serialize_response(fault("Too many open connections", 503), true);
                    (void)!::send(client.get(), busy.data(), busy.size(), MSG_NOSIGNAL);
                } else {
                    connections.push_back(Connection{.fd = std::move(client)});
                }
            }
        }
        for (size_t i = 0; i < polled.size(); ++i) {
            Connection& c = *polled[i];
            const short revents = fds[i + 2].revents;
            if (revents & (POLLIN | POLLHUP | POLLERR)) {
                char chunk[kReadChunk];
                const ssize_t n = ::recv(c.fd.get(), chunk, sizeof chunk, 0);
                if (n > 0) {
                    c.in.append(chunk, static_cast<size_t>(n));
                    answer(c);
                } else if (n == 0) {
                    c.close_after_flush = true;  // the client is done sending: answer what it sent, then close
                } else if (errno != EAGAIN && errno != EINTR) {
                    c.dead = true;
                    continue;
                }
            }
            if (!c.out.empty()) {  // also straight after answering: the socket usually has room
                const ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n > 0) {
                    c.out.erase(0, static_cast<size_t>(n));
                } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                    c.dead = true;
                    continue;
                }
            }
            if (c.close_after_flush && c.out.empty()) c.dead = true;
        }
        connections.remove_if([](const Connection& c) { return c.dead; });
    }
}

}  // namespace keel::api
