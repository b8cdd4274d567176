// The control API's HTTP framing against arbitrary bytes from a client. The
// first byte chooses the size of the reads the stream is cut into; the parser
// must give the same requests and the same first error whether the bytes
// arrive at once or in those pieces, must never consume bytes of an incomplete
// request, and must honour its limits.

#include <string>
#include <variant>
#include <vector>

#include "api/http_request.h"
#include "fuzz_input.h"

using namespace keel::api;
using keel::fuzz::check;

namespace {

// Small limits, so that the fuzzer reaches them.
const HttpLimits kLimits{.max_line = 64, .max_headers = 4, .max_body = 256};

struct Outcome {
    std::vector<HttpRequest> requests;
    std::string error;  // the first error, if any; parsing stops there
};

bool same(const HttpRequest& a, const HttpRequest& b) {
    return a.method == b.method && a.path == b.path && a.http10 == b.http10 && a.headers == b.headers &&
           a.body == b.body;
}

void take_all(std::string& buffer, Outcome& outcome) {
    while (outcome.error.empty()) {
        const size_t before = buffer.size();
        auto result = take_request(buffer, kLimits);
        if (auto* request = std::get_if<HttpRequest>(&result)) {
            check(buffer.size() < before);
            check(request->body.size() <= kLimits.max_body && request->headers.size() <= kLimits.max_headers);
            check(!request->path.empty() && request->path.front() == '/');
            outcome.requests.push_back(std::move(*request));
            continue;
        }
        check(buffer.size() == before);  // nothing consumed without a request
        if (auto* error = std::get_if<HttpParseError>(&result)) outcome.error = error->message;
        return;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    keel::fuzz::FuzzInput input({data, size});
    const size_t piece = 1 + input.u8() % 16;
    const auto stream_bytes = input.bytes(size);
    const std::string stream(stream_bytes.begin(), stream_bytes.end());

    Outcome whole;
    std::string buffer = stream;
    take_all(buffer, whole);

    Outcome pieces;
    std::string pending;
    for (size_t at = 0; at < stream.size() && pieces.error.empty(); at += piece) {
        pending += stream.substr(at, piece);
        take_all(pending, pieces);
    }
    // Framing must not depend on how the bytes were read: the same requests, the same error.
    check(pieces.requests.size() == whole.requests.size());
    for (size_t i = 0; i < whole.requests.size(); ++i) check(same(pieces.requests[i], whole.requests[i]));
    check(pieces.error == whole.error);
    return 0;
}
