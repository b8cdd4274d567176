#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

// The host-kernel surface of a run: which syscalls a system made, from the
// output of `strace -f -o FILE` (one line per call, each prefixed by the
// calling thread's id).
namespace keel::bench {

// Which calls count as "while the payload runs".
struct StraceWindow {
    enum class Kind : uint8_t {
        // Every call of every thread from the first call that matches on (a
        // VM: the first KVM_RUN; from then on the guest drives the VMM).
        FromFirstMatch,
        // Only the process that matches (a container's payload: the execve of
        // the payload program), from that call on, and every process it
        // starts afterwards (a container's payload can only reach the host
        // kernel through its own syscalls).
        MatchingProcessTree,
    };
    Kind kind = Kind::FromFirstMatch;
    std::string syscall;        // "ioctl", "execve"
    std::string argument_text;  // must appear in the call's arguments: "KVM_RUN", "\"/bench/payload.sh\""
};

struct StraceSummary {
    std::map<std::string, uint64_t> all_calls;     // syscall -> calls, the whole run
    std::map<std::string, uint64_t> window_calls;  // syscall -> calls, inside the window
    bool window_found = false;                     // the window's first call was seen
    uint64_t unparsed_lines = 0;                   // lines that were neither a call nor strace's notes
};

// Pure: reads strace's text. Never throws on odd input: lines it cannot read
// are counted in `unparsed_lines`.
[[nodiscard]] StraceSummary summarize_strace(std::string_view text, const StraceWindow& window);

}  // namespace keel::bench
