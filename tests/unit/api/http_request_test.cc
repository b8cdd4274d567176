#include "api/http_request.h"

#include <catch2/catch.hpp>
#include <string>

using namespace keel::api;

namespace {

const HttpLimits kLimits{};

HttpRequest take_complete(std::string& buffer) {
    auto result = take_request(buffer, kLimits);
    INFO("variant index " << result.index());
    if (const auto* error = std::get_if<HttpParseError>(&result)) FAIL("parse error: " << error->message);
    REQUIRE(std::holds_alternative<HttpRequest>(result));
    return std::get<HttpRequest>(std::move(result));
}

std::string error_of(std::string buffer, const HttpLimits& limits = kLimits) {
    const auto result = take_request(buffer, limits);
    REQUIRE(std::holds_alternative<HttpParseError>(result));
    return std::get<HttpParseError>(result).message;
}

}  // namespace

TEST_CASE("a PUT with a JSON body is framed by its Content-Length", "[api][http]") {
    std::string buffer =
        "PUT /boot-source HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        "Content-Length: 33\r\n\r\n{\"kernel_image_path\": \"vmlinux\"}X";
    const auto request = take_complete(buffer);
    CHECK(request.method == HttpMethod::Put);
    CHECK(request.path == "/boot-source");
    CHECK_FALSE(request.http10);
    CHECK(request.body == "{\"kernel_image_path\": \"vmlinux\"}X");
    CHECK(request.header("content-type") == "application/json");
    CHECK(request.header("HOST") == "localhost");
    CHECK_FALSE(request.header("Accept").has_value());
    CHECK(buffer.empty());
}

TEST_CASE("pipelined requests are taken one at a time, the rest left in the buffer", "[api][http]") {
    std::string buffer = "GET / HTTP/1.1\r\n\r\nPATCH /vm HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}GET /ver";
    CHECK(take_complete(buffer).path == "/");
    const auto second = take_complete(buffer);
    CHECK(second.method == HttpMethod::Patch);
    CHECK(second.http10);
    CHECK(second.body == "{}");
    CHECK(buffer == "GET /ver");
    CHECK(std::holds_alternative<HttpIncomplete>(take_request(buffer, kLimits)));
    CHECK(buffer == "GET /ver");  // nothing is consumed until a request is whole
}

TEST_CASE("a request arriving byte by byte is incomplete until its last byte", "[api][http]") {
    const std::string whole = "PUT /actions HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd";
    std::string buffer;
    for (size_t i = 0; i + 1 < whole.size(); ++i) {
        buffer += whole[i];
        const auto result = take_request(buffer, kLimits);
        INFO("after " << i + 1 << " bytes");
        CHECK((std::holds_alternative<HttpIncomplete>(result) || std::holds_alternative<HttpAwaitingBody>(result)));
    }
    buffer += whole.back();
    CHECK(take_complete(buffer).body == "abcd");
}

TEST_CASE("a client that expects 100-continue is told so once its headers are in", "[api][http]") {
    std::string buffer = "PUT /drives/rootfs HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 10\r\n\r\n";
    const auto result = take_request(buffer, kLimits);
    REQUIRE(std::holds_alternative<HttpAwaitingBody>(result));
    CHECK(std::get<HttpAwaitingBody>(result).expects_continue);
    buffer += "0123456789";
    CHECK(take_complete(buffer).body == "0123456789");
    CHECK(error_of("PUT / HTTP/1.1\r\nExpect: something\r\n\r\n").find("Expect") != std::string::npos);
}

TEST_CASE("the absolute form of a target is reduced to its path, leading empty lines are skipped", "[api][http]") {
    std::string buffer = "\r\n\r\nGET http://localhost/machine-config HTTP/1.1\r\n\r\n";
    CHECK(take_complete(buffer).path == "/machine-config");
    buffer = "GET http://localhost HTTP/1.1\r\n\r\n";
    CHECK(take_complete(buffer).path == "/");
}

TEST_CASE("malformed request lines are refused with what was wrong", "[api][http]") {
    CHECK(error_of("POST / HTTP/1.1\r\n\r\n") == "Invalid HTTP Method: Unsupported HTTP method.");
    CHECK(error_of("get / HTTP/1.1\r\n\r\n") == "Invalid HTTP Method: Unsupported HTTP method.");
    CHECK(error_of("GET / HTTP/2.0\r\n\r\n").find("Invalid HTTP Version") == 0);
    CHECK(error_of("GET /  HTTP/1.1\r\n\r\n").find("Invalid request line") == 0);
    CHECK(error_of("GET /\r\n\r\n").find("Invalid request line") == 0);
    CHECK(error_of("GET * HTTP/1.1\r\n\r\n").find("Invalid request target") == 0);
    CHECK(error_of("GET /a\x01 HTTP/1.1\r\n\r\n").find("Invalid request target") == 0);
    CHECK(error_of("GET / HTTP/1.1\nHost: x\r\n\r\n") == "Lines must end in CRLF");
    CHECK(error_of("GET / HTTP/1.1\r\r\n\r\n") == "Lines must end in CRLF");
}

TEST_CASE("malformed headers are refused", "[api][http]") {
    CHECK(error_of("GET / HTTP/1.1\r\nNo colon here\r\n\r\n").find("Invalid header") == 0);
    CHECK(error_of("GET / HTTP/1.1\r\n: empty name\r\n\r\n").find("Invalid header") == 0);
    CHECK(error_of("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n").find("Invalid header") == 0);
    CHECK(error_of("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n").find("folded") != std::string::npos);
    using namespace std::string_literals;  // the literal keeps its NUL
    CHECK(error_of("GET / HTTP/1.1\r\nA: b\0c\r\n\r\n"s).find("control characters") != std::string::npos);
}

TEST_CASE("bodies are framed by one agreed Content-Length within the limit, never chunked", "[api][http]") {
    CHECK(error_of("PUT / HTTP/1.1\r\nContent-Length: 51201\r\n\r\n") ==
          "Request payload with size 51201 is larger than the limit of 51200 allowed by server.");
    CHECK(
        error_of("PUT / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n").find("Invalid Content-Length") ==
        0);
    CHECK(error_of("PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n").find("Invalid Content-Length") == 0);
    CHECK(error_of("PUT / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n").find("Invalid Content-Length") == 0);
    CHECK(error_of("PUT / HTTP/1.1\r\nContent-Length:\r\n\r\n").find("Invalid Content-Length") == 0);
    CHECK(error_of("PUT / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n") ==
          "Conflicting Content-Length headers");
    CHECK(error_of("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").find("Transfer-Encoding") == 0);
    std::string agreed = "PUT / HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n{}";
    CHECK(take_complete(agreed).body == "{}");
}

TEST_CASE("limits on lines and header count hold before the request is complete", "[api][http]") {
    HttpLimits small;
    small.max_line = 32;
    small.max_headers = 2;
    // No CRLF yet, but already longer than any acceptable line: refused now.
    CHECK(error_of("GET /" + std::string(40, 'a'), small).find("longer than 32") != std::string::npos);
    CHECK(error_of("GET / HTTP/1.1\r\nA: " + std::string(40, 'a') + "\r\n\r\n", small).find("longer than 32") !=
          std::string::npos);
    CHECK(error_of("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n", small) == "Too many headers: at most 2");
    std::string ok = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n";
    CHECK(std::holds_alternative<HttpRequest>(take_request(ok, small)));
}

TEST_CASE("a line exactly at the limit waits for its LF even when its CR has arrived", "[api][http]") {
    HttpLimits small;
    small.max_line = 16;
    std::string buffer = "GET /0123456789 HTTP/1.1";  // 24 bytes: too long once complete
    CHECK(std::holds_alternative<HttpParseError>(take_request(buffer, small)));
    small.max_line = 24;
    buffer += "\r";
    CHECK(std::holds_alternative<HttpIncomplete>(take_request(buffer, small)));
    buffer += "\n\r\n";
    CHECK(std::holds_alternative<HttpRequest>(take_request(buffer, small)));
}
