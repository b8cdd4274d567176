#include "arch/x86_64/acpi/acpi_tables.h"

#include <numeric>

namespace keel::x86::acpi {

uint8_t byte_sum(std::span<const uint8_t> bytes) {
    return static_cast<uint8_t>(std::accumulate(bytes.begin(), bytes.end(), 0u));
}

uint8_t checksum_byte(std::span<const uint8_t> bytes) {
    return static_cast<uint8_t>(0x100u - byte_sum(bytes));
}

SdtHeader make_sdt_header(const std::array<char, 4>& signature, uint32_t length, uint8_t revision) {
    SdtHeader header;
    header.signature = signature;
    header.length = length;
    header.revision = revision;
    header.oem_id = kOemId;
    header.oem_table_id = kOemTableId;
    header.oem_revision = kOemRevision;
    header.creator_id = kCreatorId;
    header.creator_revision = kCreatorRevision;
    return header;
}

void finish_sdt(std::span<uint8_t> table) {
    table[kSdtChecksumOffset] = 0;
    table[kSdtChecksumOffset] = checksum_byte(table);
}

}  // namespace keel::x86::acpi
