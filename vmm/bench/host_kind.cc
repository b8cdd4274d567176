#include "bench/host_kind.h"

#include <cpuid.h>

#include <cstring>

namespace keel::bench {

HostKind classify_host(bool hypervisor_bit, const std::string& signature) {
    if (!hypervisor_bit) return {"bare metal", false};
    if (signature == "TCGTCGTCGTCG") return {"emulated (QEMU TCG)", true};
    std::string printable;
    for (const char c : signature) {
        if (c >= 0x20 && c < 0x7f) printable += c;
    }
    return {"nested (hypervisor " + (printable.empty() ? std::string("unknown") : printable) + ")", false};
}

HostKind host_kind() {
    unsigned eax = 0;
    unsigned ebx = 0;
    unsigned ecx = 0;
    unsigned edx = 0;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return classify_host(false, "");
    const bool hypervisor = (ecx & (1U << 31)) != 0;
    std::string signature;
    if (hypervisor) {
        // Leaf 0x40000000 is outside the range __get_cpuid checks against.
        __cpuid(0x40000000, eax, ebx, ecx, edx);
        char text[12];
        std::memcpy(text, &ebx, 4);
        std::memcpy(text + 4, &ecx, 4);
        std::memcpy(text + 8, &edx, 4);
        signature.assign(text, sizeof text);
        while (!signature.empty() && signature.back() == '\0') signature.pop_back();
    }
    return classify_host(hypervisor, signature);
}

}  // namespace keel::bench
