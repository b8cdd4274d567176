#include "bench/http_probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bench/child_process.h"
#include "common/fd.h"
#include "core/boot_clock.h"

namespace keel::bench {

std::optional<int> http_status(std::string_view reply) {
    // "HTTP/1.x NNN"
    if (!reply.starts_with("HTTP/1.") || reply.size() < 12 || reply[8] != ' ') return std::nullopt;
    int code = 0;
    for (size_t i = 9; i < 12; ++i) {
        if (reply[i] < '0' || reply[i] > '9') return std::nullopt;
        code = code * 10 + (reply[i] - '0');
    }
    if (reply.size() > 12 && reply[12] != ' ' && reply[12] != '\r') return std::nullopt;
    return code;
}

bool http_reply_serves(std::string_view reply, std::string_view marker) {
    if (http_status(reply) != 200) return false;
    const auto body = reply.find("\r\n\r\n");
    return body != std::string_view::npos && reply.substr(body + 4).find(marker) != std::string_view::npos;
}

std::string http_request(const std::string& method, const std::string& path, const std::string& host,
                         const std::string& body) {
    std::string request = method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n";
    if (!body.empty()) {
        request += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    }
    return request + "\r\n" + body;
}

namespace {

// Waits for `events` on `fd` until `deadline_ns`; false on timeout.
bool wait_for(int fd, short events, uint64_t deadline_ns) {
    for (;;) {
        const uint64_t now = monotonic_ns();
        if (now >= deadline_ns) return false;
        pollfd p{fd, events, 0};
        const int ready = ::poll(&p, 1, poll_wait_ms(now, deadline_ns));
        if (ready > 0) return true;
        if (ready < 0 && errno != EINTR) return false;
    }
}

// Connects the non-blocking `fd` to `address` by `deadline_ns`.
bool connect_by(int fd, const sockaddr* address, socklen_t length, uint64_t deadline_ns) {
    if (::connect(fd, address, length) == 0) return true;
    if (errno != EINPROGRESS) return false;
    if (!wait_for(fd, POLLOUT, deadline_ns)) return false;
    int error = 0;
    socklen_t size = sizeof error;
    return ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) == 0 && error == 0;
}

bool send_all(int fd, const std::string& data, uint64_t deadline_ns) {
    size_t sent = 0;
    while (sent < data.size()) {
        const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
        } else if (n < 0 && errno == EAGAIN) {
            if (!wait_for(fd, POLLOUT, deadline_ns)) return false;
        } else if (n < 0 && errno != EINTR) {
            return false;
        }
    }
    return true;
}

// Reads until the peer closes, the deadline, or (with `headers_only`) the end of the headers.
std::string receive(int fd, uint64_t deadline_ns, bool headers_only) {
    std::string reply;
    char buffer[4096];
    while (wait_for(fd, POLLIN, deadline_ns)) {
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            break;
        }
        reply.append(buffer, static_cast<size_t>(n));
        if (headers_only && reply.find("\r\n\r\n") != std::string::npos) break;
    }
    return reply;
}

}  // namespace

std::string http_get(const std::string& address, uint16_t port, unsigned connect_timeout_ms,
                     unsigned total_timeout_ms) {
    const uint64_t start = monotonic_ns();
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    if (::inet_pton(AF_INET, address.c_str(), &to.sin_addr) != 1) return {};
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return {};
    if (!connect_by(fd.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to,
                    start + uint64_t{connect_timeout_ms} * 1'000'000)) {
        return {};
    }
    const uint64_t deadline = start + uint64_t{total_timeout_ms} * 1'000'000;
    if (!send_all(fd.get(), http_request("GET", "/", address, ""), deadline)) return {};
    return receive(fd.get(), deadline, false);
}

std::optional<int> unix_socket_request(const std::string& path, const std::string& request, unsigned timeout_ms) {
    const uint64_t deadline = monotonic_ns() + uint64_t{timeout_ms} * 1'000'000;
    sockaddr_un to{};
    to.sun_family = AF_UNIX;
    if (path.size() >= sizeof to.sun_path) return std::nullopt;
    std::memcpy(to.sun_path, path.c_str(), path.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return std::nullopt;
    if (!connect_by(fd.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to, deadline)) return std::nullopt;
    if (!send_all(fd.get(), request, deadline)) return std::nullopt;
    return http_status(receive(fd.get(), deadline, true));
}

}  // namespace keel::bench
