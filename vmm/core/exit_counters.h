#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>

namespace keel {

// VM exits one vCPU handed to userspace, by KVM exit reason and, for port
// and MMIO exits, by address. Owned and written by its vCPU thread only; read
// after the thread has been joined, so no synchronisation is needed.
struct ExitCounters {
    static constexpr size_t kReasons = 64;
    std::array<uint64_t, kReasons> by_reason{};
    std::map<uint64_t, uint64_t> pio_by_port;
    std::map<uint64_t, uint64_t> mmio_by_address;

    void count(uint32_t reason) { ++by_reason[reason < kReasons ? reason : kReasons - 1]; }
    void merge(const ExitCounters& other);
    [[nodiscard]] uint64_t total() const;
};

// "IO", "MMIO", "HLT", ... from the KVM_EXIT_* number.
[[nodiscard]] std::string exit_reason_name(uint32_t reason);

}  // namespace keel
