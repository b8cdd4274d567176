#include "api/api_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>

#include "common/error.h"

using namespace keel;
using namespace keel::api;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

std::string socket_path(const std::string& name) {
    return "/tmp/keel-api-" + std::to_string(::getpid()) + "-" + name + ".sock";
}

// Answers GET /echo/... with the path, anything else with a fault naming it.
ApiResponse echo(const HttpRequest& request) {
    if (request.path.starts_with("/echo")) return json_response({{"path", request.path}, {"body", request.body}});
    return fault("no route " + request.path);
}

UniqueFd connect_to(const std::string& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.c_str(), path.size());
    REQUIRE(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    return fd;
}

void send_all(const UniqueFd& fd, std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
        REQUIRE(n > 0);
        bytes.remove_prefix(static_cast<size_t>(n));
    }
}

// Reads until `count` complete responses (by Content-Length, or none for 204/100) have arrived, or 5 s pass.
std::string read_responses(const UniqueFd& fd, size_t count) {
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    const auto complete = [&] {
        size_t at = 0;
        for (size_t i = 0; i < count; ++i) {
            const auto end = got.find("\r\n\r\n", at);
            if (end == std::string::npos) return false;
            size_t length = 0;
            const auto header = got.find("Content-Length: ", at);
            if (header != std::string::npos && header < end) length = std::stoul(got.substr(header + 16));
            if (got.size() < end + 4 + length) return false;
            at = end + 4 + length;
        }
        return true;
    };
    while (!complete() && std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd.get(), POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        char buf[4096];
        const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
    }
    return got;
}

bool closed_by_peer(const UniqueFd& fd) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) return false;
    char c;
    return ::recv(fd.get(), &c, 1, 0) == 0;
}

}  // namespace

TEST_CASE("responses are framed as HTTP/1.1 with keep-alive, 204 without a body", "[api][server]") {
    CHECK(serialize_response({.status = 204}, false) ==
          "HTTP/1.1 204 No Content\r\nServer: keel\r\nConnection: keep-alive\r\n\r\n");
    CHECK(serialize_response(fault("x"), true) ==
          "HTTP/1.1 400 Bad Request\r\nServer: keel\r\nConnection: close\r\nContent-Type: application/json\r\n"
          "Content-Length: 21\r\n\r\n{\"fault_message\":\"x\"}");
}

TEST_CASE("the API socket answers requests in order, pipelined or split into single bytes", "[api][server]") {
    const auto path = socket_path("order");
    const ApiServer server(path, {}, echo);
    const auto client = connect_to(path);
    send_all(
        client,
        "GET /echo/1 HTTP/1.1\r\n\r\nPUT /echo/2 HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}GET /nope HTTP/1.1\r\n\r\n");
    auto got = read_responses(client, 3);
    const auto first = got.find("\"path\":\"/echo/1\"");
    const auto second = got.find("\"path\":\"/echo/2\"");
    const auto third = got.find("no route /nope");
    REQUIRE(first != std::string::npos);
    REQUIRE(second != std::string::npos);
    REQUIRE(third != std::string::npos);
    CHECK(first < second);
    CHECK(second < third);
    CHECK_THAT(got, StartsWith("HTTP/1.1 200 OK\r\n"));
    // One byte at a time on the same connection.
    for (const char c : std::string("GET /echo/3 HTTP/1.1\r\nHost: x\r\n\r\n"))
        send_all(client, std::string_view(&c, 1));
    CHECK_THAT(read_responses(client, 1), Contains("\"path\":\"/echo/3\""));
}

TEST_CASE("a malformed request gets a 400 and the connection keeps serving", "[api][server]") {
    const auto path = socket_path("malformed");
    const ApiServer server(path, {}, echo);
    const auto client = connect_to(path);
    send_all(client, "BREW /pot HTTP/1.1\r\n\r\n");
    CHECK_THAT(read_responses(client, 1), StartsWith("HTTP/1.1 400 Bad Request\r\n"));
    send_all(client, "PUT /echo HTTP/1.1\r\nContent-Length: 999999\r\n\r\n");
    CHECK_THAT(read_responses(client, 1), Contains("larger than the limit"));
    send_all(client, "GET /echo/after HTTP/1.1\r\n\r\n");
    CHECK_THAT(read_responses(client, 1), Contains("/echo/after"));
}

TEST_CASE("Expect: 100-continue gets its interim answer before the body", "[api][server]") {
    const auto path = socket_path("continue");
    const ApiServer server(path, {}, echo);
    const auto client = connect_to(path);
    send_all(client, "PUT /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    CHECK(read_responses(client, 1) == "HTTP/1.1 100 Continue\r\n\r\n");
    send_all(client, "{}");
    CHECK_THAT(read_responses(client, 1), Contains("\"body\":\"{}\""));
}

TEST_CASE("Connection: close, HTTP/1.0 and a half-closed client end the connection after the answer", "[api][server]") {
    const auto path = socket_path("close");
    const ApiServer server(path, {}, echo);
    const auto a = connect_to(path);
    send_all(a, "GET /echo/a HTTP/1.1\r\nConnection: close\r\n\r\n");
    CHECK_THAT(read_responses(a, 1), Contains("Connection: close"));
    CHECK(closed_by_peer(a));
    const auto b = connect_to(path);
    send_all(b, "GET /echo/b HTTP/1.0\r\n\r\n");
    CHECK_THAT(read_responses(b, 1), Contains("/echo/b"));
    CHECK(closed_by_peer(b));
    const auto c = connect_to(path);
    send_all(c, "GET /echo/c HTTP/1.1\r\n\r\n");
    ::shutdown(c.get(), SHUT_WR);
    CHECK_THAT(read_responses(c, 1), Contains("/echo/c"));
    CHECK(closed_by_peer(c));
}

TEST_CASE("beyond the connection limit a client gets a 503, the others keep working", "[api][server]") {
    const auto path = socket_path("limit");
    const ApiServer server(path, {.max_connections = 2}, echo);
    const auto a = connect_to(path);
    const auto b = connect_to(path);
    send_all(a, "GET /echo/a HTTP/1.1\r\n\r\n");
    send_all(b, "GET /echo/b HTTP/1.1\r\n\r\n");
    CHECK_THAT(read_responses(a, 1), Contains("/echo/a"));
    CHECK_THAT(read_responses(b, 1), Contains("/echo/b"));
    const auto c = connect_to(path);
    CHECK_THAT(read_responses(c, 1), StartsWith("HTTP/1.1 503 Service Unavailable"));
    send_all(a, "GET /echo/a2 HTTP/1.1\r\n\r\n");
    CHECK_THAT(read_responses(a, 1), Contains("/echo/a2"));
}

TEST_CASE("the socket path is refused when it exists, and removed when the server ends", "[api][server]") {
    const auto path = socket_path("lifetime");
    {
        const ApiServer server(path, {}, echo);
        CHECK(std::filesystem::exists(path));
        CHECK_THROWS_WITH(ApiServer(path, {}, echo), Contains("already exists"));
    }
    CHECK_FALSE(std::filesystem::exists(path));
    CHECK_THROWS_WITH(ApiServer(std::string(200, 'x'), {}, echo), Contains("bytes long"));
    CHECK_THROWS_WITH(ApiServer("/nonexistent-dir/keel.sock", {}, echo), Contains("cannot create API socket"));
}

TEST_CASE("a dispatcher that throws answers 500 and the server goes on", "[api][server]") {
    const auto path = socket_path("throw");
    std::atomic<int> calls{0};
    const ApiServer server(path, {}, [&](const HttpRequest&) -> ApiResponse {
        if (calls++ == 0) throw std::runtime_error("boom");
        return {.status = 204};
    });
    const auto client = connect_to(path);
    send_all(client, "GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    const auto got = read_responses(client, 2);
    CHECK_THAT(got, StartsWith("HTTP/1.1 500 Internal Server Error"));
    CHECK_THAT(got, Contains("HTTP/1.1 204 No Content"));
}
