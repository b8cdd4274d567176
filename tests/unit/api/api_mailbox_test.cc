#include "api/api_mailbox.h"

#include <poll.h>

#include <catch2/catch.hpp>
#include <future>
#include <thread>
#include <vector>

using namespace keel::api;

namespace {

bool readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1;
}

}  // namespace

TEST_CASE("mailbox: the VMM thread answers each request in order, the API thread waits for its answer",
          "[api][mailbox]") {
    ApiMailbox mailbox;
    CHECK_FALSE(readable(mailbox.fd(), 0));
    auto first = std::async(std::launch::async, [&] { return mailbox.submit(GetVersion{}); });
    REQUIRE(readable(mailbox.fd(), 5000));
    std::vector<std::string> seen;
    mailbox.drain([&](const ApiAction& action) {
        seen.emplace_back(action_name(action));
        return json_response({{"answer", seen.size()}});
    });
    CHECK(first.get().body == R"({"answer":1})");
    CHECK(seen == std::vector<std::string>{"get_version"});
    // Drained: nothing left to wake the loop for.
    CHECK_FALSE(readable(mailbox.fd(), 0));
}

TEST_CASE("mailbox: close() answers waiting and later requests with a 503", "[api][mailbox]") {
    ApiMailbox mailbox;
    auto waiting = std::async(std::launch::async, [&] { return mailbox.submit(PauseVm{}); });
    REQUIRE(readable(mailbox.fd(), 5000));
    mailbox.close("The microVM has stopped.");
    const auto answer = waiting.get();
    CHECK(answer.status == 503);
    CHECK(answer.body == R"({"fault_message":"The microVM has stopped."})");
    CHECK(mailbox.submit(GetVersion{}).status == 503);
    size_t handled = 0;
    mailbox.drain([&](const ApiAction&) {
        ++handled;
        return ApiResponse{};
    });
    CHECK(handled == 0);
}
