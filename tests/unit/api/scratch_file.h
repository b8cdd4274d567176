#pragma once

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace keel::test {

// A file in /tmp holding `text` for as long as the test runs: the API checks
// that kernels, initrds and drives open, so the tests need real ones.
struct ScratchFile {
    std::string path;
    explicit ScratchFile(const std::string& name, const std::string& text = "x")
        : path("/tmp/keel-api-test-" + std::to_string(::getpid()) + "-" + name) {
        std::ofstream(path) << text;
    }
    ~ScratchFile() { std::remove(path.c_str()); }
    ScratchFile(const ScratchFile&) = delete;
    ScratchFile& operator=(const ScratchFile&) = delete;
};

}  // namespace keel::test
