#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// The bench's own minimal HTTP/1.x client: one GET over TCP to see whether a
// service answers, one request over a Unix socket to keel's API. In-process
// rather than curl, so that polling every 100 ms costs no process start
// (expensive on an emulated host) and the time of the first reply is when
// the bench read it.
namespace keel::bench {

// Pure: the status code of an HTTP/1.x reply ("HTTP/1.1 200 OK\r\n..."), or
// nullopt when `reply` does not start with a status line.
[[nodiscard]] std::optional<int> http_status(std::string_view reply);

// Pure: whether `reply` is a 200 whose body holds `marker`.
[[nodiscard]] bool http_reply_serves(std::string_view reply, std::string_view marker);

// Pure: a request with `body` (empty: none), closing the connection after it.
[[nodiscard]] std::string http_request(const std::string& method, const std::string& path, const std::string& host,
                                       const std::string& body);

// GET / from `address`:`port` (IPv4). Gives up connecting after
// `connect_timeout_ms` and on the whole after `total_timeout_ms`. Returns
// what arrived (possibly nothing: not reachable yet); never throws for
// network errors.
[[nodiscard]] std::string http_get(const std::string& address, uint16_t port, unsigned connect_timeout_ms,
                                   unsigned total_timeout_ms);

// Sends `request` on the Unix socket `path` and returns the reply's status
// code (the headers are all it waits for), or nullopt when the socket cannot
// be reached or says nothing within `timeout_ms`.
[[nodiscard]] std::optional<int> unix_socket_request(const std::string& path, const std::string& request,
                                                     unsigned timeout_ms);

}  // namespace keel::bench
