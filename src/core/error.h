// core/error.h — the one exception type of autoround.cpp.
//
// Every layer throws autoround::Error with a message that names the file, tensor, shape or
// flag at fault and says what to do. The CLI catches it, prints "error: <message>" and
// exits with status 1. Nothing in the library calls exit() or abort() on bad input.
#pragma once

#include <stdexcept>
#include <string>
#include <sstream>
#include <utility>

namespace autoround {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Builds a message from any streamable pieces: fail("tensor ", name, " has shape ", ...).
template <typename... Args>
[[noreturn]] inline void fail(Args&&... args) {
    std::ostringstream os;
    (os << ... << std::forward<Args>(args));
    throw Error(os.str());
}

// Checks a condition that depends on user input; throws Error with the message if false.
template <typename... Args>
inline void check(bool ok, Args&&... args) {
    if (!ok) fail(std::forward<Args>(args)...);
}

}  // namespace autoround
