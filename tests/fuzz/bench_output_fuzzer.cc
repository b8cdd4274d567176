// libFuzzer target: the text keel bench compare reads from other programs --
// `strace -f` output and /proc/PID/smaps -- which it must survive whatever
// the programs (or a hostile payload writing to a traced console) produce.
// The first byte picks the strace window; the rest is the text.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bench/process_probe.h"
#include "bench/strace_summary.h"
#include "fuzz_input.h"

using keel::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

    keel::bench::StraceWindow window;
    window.kind = (data[0] & 1) != 0 ? keel::bench::StraceWindow::Kind::MatchingProcessTree
                                     : keel::bench::StraceWindow::Kind::FromFirstMatch;
    window.syscall = (data[0] & 2) != 0 ? "execve" : "ioctl";
    window.argument_text = (data[0] & 4) != 0 ? "\"/bench/payload.sh\"" : "KVM_RUN";
    const auto summary = keel::bench::summarize_strace(text, window);
    // The window is part of the run: never more calls of a syscall than the run had.
    for (const auto& [name, calls] : summary.window_calls) {
        const auto all = summary.all_calls.find(name);
        check(all != summary.all_calls.end() && calls <= all->second);
    }
    check(summary.window_calls.empty() || summary.window_found);

    const uint64_t guest_memory = uint64_t{1} << (data[0] >> 3);
    const auto ram = keel::bench::guest_ram_mappings(text, guest_memory);
    for (const auto& [first, last] : ram) check(last > first && last - first >= guest_memory / 2);
    const auto breakdown = keel::classify_smaps(text, ram, {}, "/usr/bin/keel");
    check(breakdown.overhead().pss_kib >= breakdown.binary.pss_kib);
    return 0;
}
