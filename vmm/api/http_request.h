#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace keel::api {

// What one connection may send. The defaults are Firecracker's (micro_http):
// a request line and each header line fit 1,024 bytes, a body 51,200.
struct HttpLimits {
    size_t max_line = 1024;
    size_t max_headers = 64;
    size_t max_body = 51200;
};

enum class HttpMethod : uint8_t { Get, Put, Patch, Delete };

[[nodiscard]] std::string_view method_name(HttpMethod method);

struct HttpRequest {
    HttpMethod method = HttpMethod::Get;
    std::string path;  // origin form, "/..." (an absolute-form URI is reduced to its path)
    bool http10 = false;
    std::vector<std::pair<std::string, std::string>> headers;  // names as sent, values trimmed
    std::string body;

    // The first header of that name (case-insensitive), if any.
    [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const;
};

// A request the server cannot take: the connection is answered with this and
// its buffered bytes are dropped (they cannot be framed any more).
struct HttpParseError {
    std::string message;
};

// The headers are complete, the body is not yet: with "Expect: 100-continue"
// the client waits for an interim "100 Continue" before sending it.
struct HttpAwaitingBody {
    bool expects_continue = false;
};

struct HttpIncomplete {};

using HttpParseResult = std::variant<HttpIncomplete, HttpAwaitingBody, HttpRequest, HttpParseError>;

// Takes one HTTP/1.x request off the front of a connection's receive buffer.
// A complete request is removed from `buffer`; anything after it (a pipelined
// request) stays. Nothing is removed while the request is incomplete, and a
// buffer that can no longer become a valid request gives HttpParseError at
// once, before its body arrives: an oversized line or body is refused from its
// announced size. Bodies are framed by Content-Length only (no chunked
// transfer coding; Firecracker's server does not decode it either).
[[nodiscard]] HttpParseResult take_request(std::string& buffer, const HttpLimits& limits);

}  // namespace keel::api
