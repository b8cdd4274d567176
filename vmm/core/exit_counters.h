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
    // Per-address counts are bounded: a guest touching many distinct
    // addresses must not grow keel's memory. Past the bound, exits are still
    // counted by reason and in `other_addresses`.
    static constexpr size_t kMaxAddresses = 256;
    std::map<uint64_t, uint64_t> pio_by_port;
    std::map<uint64_t, uint64_t> mmio_by_address;
    uint64_t other_addresses = 0;

    void count(uint32_t reason) { ++by_reason[reason < kReasons ? reason : kReasons - 1]; }
    void count_address(std::map<uint64_t, uint64_t>& counts, uint64_t address) {
        if (auto it = counts.find(address); it != counts.end()) {
            ++it->second;
        } else if (counts.size() < kMaxAddresses) {
            counts.emplace(address, 1);
        } else {
            ++other_addresses;
        }
    }
    void merge(const ExitCounters& other);
    [[nodiscard]] uint64_t total() const;
};

// "IO", "MMIO", "HLT", ... from the KVM_EXIT_* number.
[[nodiscard]] std::string exit_reason_name(uint32_t reason);

}  // namespace keel
