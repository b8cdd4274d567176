#include "api/http_request.h"

#include <algorithm>
#include <charconv>

namespace keel::api {

namespace {

constexpr std::string_view kCrlf = "\r\n";

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

// RFC 9110 §5.6.2 tchar.
bool is_token_char(char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Field values may hold visible characters, spaces, tabs and obs-text, never
// other control characters (a bare CR or LF would split a header in two).
bool is_field_value_char(char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte == '\t' || (byte >= 0x20 && byte != 0x7f);
}

std::string_view trim_whitespace(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

// A printable excerpt of what the client sent, for error messages.
std::string excerpt(std::string_view text) {
    constexpr size_t kMax = 64;
    std::string out;
    for (char c : text.substr(0, kMax)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
    if (text.size() > kMax) out += "...";
    return out;
}

struct LineScan {
    enum class Kind : uint8_t { Line, Incomplete, TooLong, BadEnding } kind;
    std::string_view line;
};

// The line starting at `pos`, which must end in CRLF within `max_line` bytes.
// The verdict depends only on the bytes up to the line's first CR or LF, so a
// request read in pieces fails exactly as it does when read at once.
LineScan scan_line(std::string_view buffer, size_t pos, size_t max_line) {
    const std::string_view rest = buffer.substr(pos);
    const size_t stray = rest.find_first_of("\r\n");
    if (stray == std::string_view::npos) {
        return {rest.size() > max_line ? LineScan::Kind::TooLong : LineScan::Kind::Incomplete, {}};
    }
    if (stray > max_line) return {LineScan::Kind::TooLong, {}};
    if (rest[stray] == '\n') return {LineScan::Kind::BadEnding, {}};
    if (stray + 1 == rest.size()) return {LineScan::Kind::Incomplete, {}};
    if (rest[stray + 1] != '\n') return {LineScan::Kind::BadEnding, {}};
    return {LineScan::Kind::Line, rest.substr(0, stray)};
}

std::optional<HttpMethod> parse_method(std::string_view text) {
    if (text == "GET") return HttpMethod::Get;
    if (text == "PUT") return HttpMethod::Put;
    if (text == "PATCH") return HttpMethod::Patch;
    if (text == "DELETE") return HttpMethod::Delete;
    return std::nullopt;
}

// Origin form "/path", or absolute form "http://authority/path" reduced to its path.
std::optional<std::string> parse_target(std::string_view target) {
    if (target.empty() || !std::all_of(target.begin(), target.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
        return std::nullopt;
    }
    if (target.front() == '/') return std::string(target);
    constexpr std::string_view kScheme = "http://";
    if (target.size() > kScheme.size() && equals_ignoring_case(target.substr(0, kScheme.size()), kScheme)) {
        const size_t slash = target.find('/', kScheme.size());
        return slash == std::string_view::npos ? std::string("/") : std::string(target.substr(slash));
    }
    return std::nullopt;
}

struct RequestLine {
    HttpMethod method;
    std::string path;
    bool http10;
};

std::variant<RequestLine, HttpParseError> parse_request_line(std::string_view line) {
    const size_t first = line.find(' ');
    const size_t second = first == std::string_view::npos ? first : line.find(' ', first + 1);
    if (second == std::string_view::npos || line.find(' ', second + 1) != std::string_view::npos) {
        return HttpParseError{"Invalid request line '" + excerpt(line) + "': expected METHOD /path HTTP/1.1"};
    }
    const auto method = parse_method(line.substr(0, first));
    if (!method) return HttpParseError{"Invalid HTTP Method: Unsupported HTTP method."};
    auto path = parse_target(line.substr(first + 1, second - first - 1));
    if (!path) {
        return HttpParseError{"Invalid request target '" + excerpt(line.substr(first + 1, second - first - 1)) +
                              "': expected /path"};
    }
    const std::string_view version = line.substr(second + 1);
    if (version != "HTTP/1.1" && version != "HTTP/1.0") {
        return HttpParseError{"Invalid HTTP Version: '" + excerpt(version) + "' (HTTP/1.0 and HTTP/1.1 are spoken)"};
    }
    return RequestLine{*method, std::move(*path), version == "HTTP/1.0"};
}

std::optional<HttpParseError> add_header(HttpRequest& request, std::string_view line, const HttpLimits& limits) {
    if (line.front() == ' ' || line.front() == '\t') {
        return HttpParseError{"Invalid header: a line folded onto the previous one (obsolete, refused)"};
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 ||
        !std::all_of(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(colon), is_token_char)) {
        return HttpParseError{"Invalid header '" + excerpt(line) + "': expected Name: value"};
    }
    const std::string_view value = trim_whitespace(line.substr(colon + 1));
    if (!std::all_of(value.begin(), value.end(), is_field_value_char)) {
        return HttpParseError{"Invalid header '" + excerpt(line.substr(0, colon)) +
                              "': control characters in its value"};
    }
    if (request.headers.size() == limits.max_headers) {
        return HttpParseError{"Too many headers: at most " + std::to_string(limits.max_headers)};
    }
    request.headers.emplace_back(line.substr(0, colon), value);
    return std::nullopt;
}

// Content-Length (every copy must agree), Transfer-Encoding refused.
std::variant<uint64_t, HttpParseError> body_length(const HttpRequest& request, const HttpLimits& limits) {
    std::optional<uint64_t> length;
    for (const auto& [name, value] : request.headers) {
        if (equals_ignoring_case(name, "Transfer-Encoding")) {
            return HttpParseError{"Transfer-Encoding is not supported: send the body with a Content-Length"};
        }
        if (!equals_ignoring_case(name, "Content-Length")) continue;
        uint64_t parsed = 0;
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
        if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
            return HttpParseError{"Invalid Content-Length '" + excerpt(value) + "'"};
        }
        if (length && *length != parsed) return HttpParseError{"Conflicting Content-Length headers"};
        length = parsed;
    }
    const uint64_t size = length.value_or(0);
    if (size > limits.max_body) {
        return HttpParseError{"Request payload with size " + std::to_string(size) + " is larger than the limit of " +
                              std::to_string(limits.max_body) + " allowed by server."};
    }
    return size;
}

}  // namespace

std::string_view method_name(HttpMethod method) {
    switch (method) {
        case HttpMethod::Get:
            return "GET";
        case HttpMethod::Put:
            return "PUT";
        case HttpMethod::Patch:
            return "PATCH";
        case HttpMethod::Delete:
            return "DELETE";
    }
    return "?";
}

std::optional<std::string_view> HttpRequest::header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
        if (equals_ignoring_case(key, name)) return std::string_view(value);
    }
    return std::nullopt;
}

HttpParseResult take_request(std::string& buffer, const HttpLimits& limits) {
    size_t pos = 0;
    // RFC 9112 §2.2: empty lines before a request line are ignored.
    while (buffer.compare(pos, kCrlf.size(), kCrlf) == 0) pos += kCrlf.size();

    const auto scan = [&](size_t at) { return scan_line(buffer, at, limits.max_line); };
    const auto line_error = [&](LineScan::Kind kind) -> HttpParseResult {
        if (kind == LineScan::Kind::TooLong) {
            return HttpParseError{"Request line or header longer than " + std::to_string(limits.max_line) + " bytes"};
        }
        if (kind == LineScan::Kind::BadEnding) return HttpParseError{"Lines must end in CRLF"};
        return HttpIncomplete{};
    };

    const LineScan first = scan(pos);
    if (first.kind != LineScan::Kind::Line) return line_error(first.kind);
    auto request_line = parse_request_line(first.line);
    if (auto* error = std::get_if<HttpParseError>(&request_line)) return std::move(*error);
    auto& parsed_line = std::get<RequestLine>(request_line);
    HttpRequest request;
    request.method = parsed_line.method;
    request.path = std::move(parsed_line.path);
    request.http10 = parsed_line.http10;
    pos += first.line.size() + kCrlf.size();

    for (;;) {
        const LineScan header = scan(pos);
        if (header.kind != LineScan::Kind::Line) return line_error(header.kind);
        pos += header.line.size() + kCrlf.size();
        if (header.line.empty()) break;
        if (auto error = add_header(request, header.line, limits)) return std::move(*error);
    }

    const auto length = body_length(request, limits);
    if (const auto* error = std::get_if<HttpParseError>(&length)) return *error;
    const auto body_size = static_cast<size_t>(std::get<uint64_t>(length));
    bool expects_continue = false;
    if (const auto expect = request.header("Expect")) {
        if (!equals_ignoring_case(*expect, "100-continue")) {
            return HttpParseError{"Unsupported Expect header '" + excerpt(*expect) + "'"};
        }
        expects_continue = true;
    }
    if (buffer.size() - pos < body_size) return HttpAwaitingBody{expects_continue};
    request.body = buffer.substr(pos, body_size);
    buffer.erase(0, pos + body_size);
    return request;
}

}  // namespace keel::api
