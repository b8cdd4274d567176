#pragma once

// Talks to keel's API socket the way clients do: curl --unix-socket (as in
// Firecracker's getting-started guide), and raw bytes for the malformed
// requests no well-behaved client sends.

#include <chrono>
#include <string>
#include <vector>

namespace keel::test {

struct HttpReply {
    int status = 0;  // 0: curl got no HTTP answer
    std::string body;
};

[[nodiscard]] HttpReply curl_api(const std::string& socket, const std::string& method, const std::string& path,
                                 const std::string& json_body = "", const std::vector<std::string>& headers = {});

// Sends `bytes` on a new connection, shuts down the sending side, and returns
// everything the server wrote until it closed (or `timeout` passed).
[[nodiscard]] std::string raw_exchange(const std::string& socket, const std::string& bytes,
                                       std::chrono::milliseconds timeout);

// The i-th of a cycle of malformed requests: truncated, oversized, wrong
// methods and paths, invalid or mistyped JSON, broken headers, binary junk.
// None of them is a valid request.
[[nodiscard]] std::string malformed_request(size_t i);

[[nodiscard]] bool wait_for_path(const std::string& path, std::chrono::seconds timeout);

}  // namespace keel::test
