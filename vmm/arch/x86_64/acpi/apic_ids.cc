#include "arch/x86_64/acpi/apic_ids.h"

#include <bitset>
#include <string>

#include "arch/x86_64/layout.h"
#include "common/error.h"

namespace keel::x86 {

void validate_apic_ids(std::span<const uint32_t> apic_ids, const char* what) {
    if (apic_ids.empty() || apic_ids.size() > kMaxVcpus) {
        throw Error(std::string(what) + ": " + std::to_string(apic_ids.size()) + " vCPUs requested; keel supports 1 to " +
                    std::to_string(kMaxVcpus));
    }
    std::bitset<kMaxXapicId + 1> seen;
    for (uint32_t id : apic_ids) {
        if (id > kMaxXapicId) {
            throw Error(std::string(what) + ": APIC ID " + std::to_string(id) + " does not fit an xAPIC (max " +
                        std::to_string(kMaxXapicId) + ")");
        }
        if (seen.test(id)) throw Error(std::string(what) + ": APIC ID " + std::to_string(id) + " is listed twice");
        seen.set(id);
    }
}

}  // namespace keel::x86
