#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>

namespace keel {

// A setup-time failure with a message a user can act on. Caught in main(),
// printed as one line, and turned into a non-zero exit.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// "what: strerror(errno)" — call right after the failing system call.
[[nodiscard]] std::string errno_message(const std::string& what, int err = errno);
[[noreturn]] void throw_errno(const std::string& what, int err = errno);

}  // namespace keel
