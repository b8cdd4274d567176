#pragma once

#include <cstdint>
#include <string>

namespace keel::test {

// The keel binary under test (the build's own, or $KEEL_BIN).
std::string keel_binary();

struct GuestImage {
    std::string kernel;   // bzImage
    std::string vmlinux;  // ELF with PVH note, empty if not available
    std::string initrd;
    std::string name;
};

// Debian's stock cloud kernel + the test initramfs (guest-images/build-stock-guest,
// or $KEEL_STOCK_GUEST_DIR). Throws when it can't be had.
GuestImage stock_guest();
// The minimal kernel (guest-images/build-minimal-kernel --if-cached) with the
// same initramfs; nullopt-like empty kernel when it was never built.
GuestImage minimal_guest();

// A fresh scratch directory for one test.
std::string scratch_dir();

// A scratch directory that goes, with everything in it (big disk images too),
// when the test ends.
struct ScratchDir {
    std::string path = scratch_dir();
    ScratchDir() = default;
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    ~ScratchDir();
};

// The number a /proc or /sys file holds (0 when it cannot be read).
uint64_t read_number_file(const std::string& path);

}  // namespace keel::test
