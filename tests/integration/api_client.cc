#include "api_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <thread>

#include "process.h"

namespace keel::test {

HttpReply curl_api(const std::string& socket, const std::string& method, const std::string& path,
                   const std::string& json_body, const std::vector<std::string>& headers) {
    std::vector<std::string> argv{"/usr/bin/curl", "-sS", "--max-time", "60", "--unix-socket",
                                  socket,          "-X",  method,       "-w", "\n%{http_code}"};
    if (!json_body.empty()) {
        argv.insert(argv.end(),
                    {"-H", "Accept: application/json", "-H", "Content-Type: application/json", "-d", json_body});
    }
    for (const auto& header : headers) argv.insert(argv.end(), {"-H", header});
    argv.push_back("http://localhost" + path);
    ProcessOptions options;
    options.timeout = std::chrono::seconds(90);
    const auto r = run_process(argv, options);
    HttpReply reply;
    const auto newline = r.out.rfind('\n');
    if (newline == std::string::npos) return reply;
    reply.body = r.out.substr(0, newline);
    try {
        reply.status = std::stoi(r.out.substr(newline + 1));
    } catch (const std::exception&) {
        reply.status = 0;
    }
    return reply;
}

std::string raw_exchange(const std::string& socket, const std::string& bytes, std::chrono::milliseconds timeout) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return "socket() failed";
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, socket.c_str(), sizeof address.sun_path - 1);
    std::string reply;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        ::close(fd);
        return "connect() failed";
    }
    // The server may answer and close before reading everything (an oversized
    // body): a failed send is part of the exchange, not an error.
    (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::array<char, 4096> buffer{};
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
        const ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n <= 0) break;
        reply.append(buffer.data(), static_cast<size_t>(n));
    }
    ::close(fd);
    return reply;
}

std::string malformed_request(size_t i) {
    const std::string n = std::to_string(i);
    switch (i % 12) {
        case 0:
            return "PUT /actions HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"action_";
        case 1:
            return "PUT /machine-config HTTP/1.1\r\nContent-Length: 9999999\r\n\r\n{\"vcpu_count\": " + n;
        case 2:
            return "DELETE /machine-config HTTP/1.1\r\n\r\n";
        case 3:
            return "POST /actions HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
        case 4:
            return "PUT /machine-config HTTP/1.1\r\nContent-Length: 14\r\n\r\n{vcpu_count: 2";
        case 5:
            return "PATCH /vm HTTP/1.1\r\nContent-Length: 11\r\n\r\n{\"state\":5}";
        case 6: {
            const std::string body = "{\"action_type\": \"InstanceStart\", \"bogus_" + n + "\": 1}";
            return "PUT /actions HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        }
        case 7:
            return "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n";
        case 8:
            return "GET /no-such-route-" + n + " HTTP/1.1\r\n\r\n";
        case 9:
            return "GET / HTTP/2.0\r\n\r\n";
        case 10: {
            std::string junk;
            for (size_t k = 0; k < 64; ++k) junk.push_back(static_cast<char>((i * 131 + k * 17) % 256));
            return junk + "\r\n\r\n";
        }
        default:
            return "PUT /vm HTTP/1.1\r\nContent-Length: 19\r\n\r\n{\"state\": \"Paused\"}";
    }
}

bool wait_for_path(const std::string& path, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (std::filesystem::exists(path)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

}  // namespace keel::test
