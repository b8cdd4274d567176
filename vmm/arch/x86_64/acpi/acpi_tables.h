#pragma once

// Wire formats of the ACPI tables keel writes (ACPI 6.4). No UAPI header
// describes them, so they are defined here, packed, each with a size check
// against the table in the spec. Multi-byte fields are little-endian, as on the
// x86 host and guest.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

namespace keel::x86::acpi {

// "ABCD" -> {'A','B','C','D'}: fixed-width, unterminated ASCII fields.
template <size_t N>
consteval std::array<char, N - 1> fixed_text(const char (&text)[N]) {
    std::array<char, N - 1> out{};
    for (size_t i = 0; i + 1 < N; ++i) out[i] = text[i];
    return out;
}

// --- Signatures (ACPI 6.4 §5.2.5.3 for the RSDP, §5.2.6 for the tables) ---
inline constexpr auto kAcpiSigRsdp = fixed_text("RSD PTR ");
inline constexpr auto kAcpiSigXsdt = fixed_text("XSDT");
inline constexpr auto kAcpiSigFadt = fixed_text("FACP");
inline constexpr auto kAcpiSigMadt = fixed_text("APIC");
inline constexpr auto kAcpiSigDsdt = fixed_text("DSDT");
inline constexpr auto kAcpiSigMcfg = fixed_text("MCFG");  // PCI Firmware 3.2 §4.1.2

// --- Who made the tables (the OEM fields of every header) ---
inline constexpr auto kOemId = fixed_text("KEEL  ");
inline constexpr auto kOemTableId = fixed_text("KEELVMM ");
inline constexpr uint32_t kOemRevision = 1;
inline constexpr auto kCreatorId = fixed_text("KEEL");
inline constexpr uint32_t kCreatorRevision = 1;
// FADT "Hypervisor Vendor Identity" (§5.2.9): lets a guest tell it runs on keel.
inline constexpr auto kHypervisorVendorId = fixed_text("KEELVMM ");

#pragma pack(push, 1)

// §5.2.3.2 Generic Address Structure.
struct GenericAddress {
    uint8_t address_space_id = 0;  // kAddressSpace*
    uint8_t register_bit_width = 0;
    uint8_t register_bit_offset = 0;
    uint8_t access_size = 0;  // kAccessSize*
    uint64_t address = 0;
};
static_assert(sizeof(GenericAddress) == 12);
inline constexpr uint8_t kAddressSpaceSystemIo = 1;
inline constexpr uint8_t kAccessSizeByte = 1;

// §5.2.5.3 Root System Description Pointer, revision 2.
struct Rsdp {
    std::array<char, 8> signature{};
    uint8_t checksum = 0;  // over the first 20 bytes (the ACPI 1.0 part)
    std::array<char, 6> oem_id{};
    uint8_t revision = 0;
    uint32_t rsdt_address = 0;
    uint32_t length = 0;
    uint64_t xsdt_address = 0;
    uint8_t extended_checksum = 0;  // over all 36 bytes
    std::array<uint8_t, 3> reserved{};
};
static_assert(sizeof(Rsdp) == 36);
inline constexpr size_t kRsdpV1Length = 20;
inline constexpr uint8_t kRsdpRevision = 2;

// §5.2.6 System Description Table Header.
struct SdtHeader {
    std::array<char, 4> signature{};
    uint32_t length = 0;  // of the whole table, header included
    uint8_t revision = 0;
    uint8_t checksum = 0;  // the whole table sums to zero
    std::array<char, 6> oem_id{};
    std::array<char, 8> oem_table_id{};
    uint32_t oem_revision = 0;
    std::array<char, 4> creator_id{};
    uint32_t creator_revision = 0;
};
static_assert(sizeof(SdtHeader) == 36);
inline constexpr size_t kSdtChecksumOffset = offsetof(SdtHeader, checksum);

// §5.2.8 XSDT: the header is followed by 64-bit table addresses.
inline constexpr uint8_t kXsdtRevision = 1;

// §5.2.9 Fixed ACPI Description Table, major version 6 (276 bytes).
struct Fadt {
    SdtHeader header;
    uint32_t firmware_ctrl = 0;
    uint32_t dsdt = 0;
    uint8_t reserved0 = 0;
    uint8_t preferred_pm_profile = 0;
    // Offsets 46..108 are the fixed ACPI hardware register blocks, ignored by
    // OSPM when HW_REDUCED_ACPI is set (§5.2.9 "If the HW_REDUCED_ACPI flag is set").
    uint16_t sci_int = 0;
    uint32_t smi_cmd = 0;
    uint8_t acpi_enable = 0;
    uint8_t acpi_disable = 0;
    uint8_t s4bios_req = 0;
    uint8_t pstate_cnt = 0;
    uint32_t pm1a_evt_blk = 0;
    uint32_t pm1b_evt_blk = 0;
    uint32_t pm1a_cnt_blk = 0;
    uint32_t pm1b_cnt_blk = 0;
    uint32_t pm2_cnt_blk = 0;
    uint32_t pm_tmr_blk = 0;
    uint32_t gpe0_blk = 0;
    uint32_t gpe1_blk = 0;
    uint8_t pm1_evt_len = 0;
    uint8_t pm1_cnt_len = 0;
    uint8_t pm2_cnt_len = 0;
    uint8_t pm_tmr_len = 0;
    uint8_t gpe0_blk_len = 0;
    uint8_t gpe1_blk_len = 0;
    uint8_t gpe1_base = 0;
    uint8_t cst_cnt = 0;
    uint16_t p_lvl2_lat = 0;
    uint16_t p_lvl3_lat = 0;
    uint16_t flush_size = 0;
    uint16_t flush_stride = 0;
    uint8_t duty_offset = 0;
    uint8_t duty_width = 0;
    uint8_t day_alrm = 0;
    uint8_t mon_alrm = 0;
    uint8_t century = 0;
    uint16_t iapc_boot_arch = 0;  // kIapcBootArch*
    uint8_t reserved1 = 0;
    uint32_t flags = 0;  // kFadtFlag*
    GenericAddress reset_reg;
    uint8_t reset_value = 0;
    uint16_t arm_boot_arch = 0;
    uint8_t minor_version = 0;
    uint64_t x_firmware_ctrl = 0;
    uint64_t x_dsdt = 0;
    GenericAddress x_pm1a_evt_blk;
    GenericAddress x_pm1b_evt_blk;
    GenericAddress x_pm1a_cnt_blk;
    GenericAddress x_pm1b_cnt_blk;
    GenericAddress x_pm2_cnt_blk;
    GenericAddress x_pm_tmr_blk;
    GenericAddress x_gpe0_blk;
    GenericAddress x_gpe1_blk;
    GenericAddress sleep_control_reg;
    GenericAddress sleep_status_reg;
    std::array<char, 8> hypervisor_vendor_id{};
};
static_assert(sizeof(Fadt) == 276);
static_assert(offsetof(Fadt, iapc_boot_arch) == 109);
static_assert(offsetof(Fadt, reset_reg) == 116);
static_assert(offsetof(Fadt, x_dsdt) == 140);
static_assert(offsetof(Fadt, sleep_control_reg) == 244);
inline constexpr uint8_t kFadtMajorVersion = 6;
inline constexpr uint8_t kFadtMinorVersion = 4;  // ACPI 6.4

// §5.2.9.3 IA-PC Boot Architecture Flags.
inline constexpr uint16_t kIapcBootArchLegacyDevices = 1u << 0;
inline constexpr uint16_t kIapcBootArch8042 = 1u << 1;
inline constexpr uint16_t kIapcBootArchVgaNotPresent = 1u << 2;
inline constexpr uint16_t kIapcBootArchMsiNotSupported = 1u << 3;
inline constexpr uint16_t kIapcBootArchPcieAspmControls = 1u << 4;
inline constexpr uint16_t kIapcBootArchCmosRtcNotPresent = 1u << 5;

// §5.2.9 Fixed ACPI Description Table Fixed Feature Flags.
inline constexpr uint32_t kFadtFlagPwrButton = 1u << 4;
inline constexpr uint32_t kFadtFlagSlpButton = 1u << 5;
inline constexpr uint32_t kFadtFlagResetRegSup = 1u << 10;
inline constexpr uint32_t kFadtFlagHwReducedAcpi = 1u << 20;

// §5.2.12 Multiple APIC Description Table: header, then
// variable-length interrupt controller structures.
struct MadtHeader {
    SdtHeader header;
    uint32_t local_apic_address = 0;
    uint32_t flags = 0;  // kMadtFlagPcatCompat
};
static_assert(sizeof(MadtHeader) == 44);
inline constexpr uint8_t kMadtRevision = 5;  // ACPI 6.4
inline constexpr uint32_t kMadtFlagPcatCompat = 1u << 0;

// §5.2.12 Interrupt Controller Structure Types.
inline constexpr uint8_t kMadtTypeLocalApic = 0;
inline constexpr uint8_t kMadtTypeIoApic = 1;
inline constexpr uint8_t kMadtTypeInterruptSourceOverride = 2;
inline constexpr uint8_t kMadtTypeLocalApicNmi = 4;

// §5.2.12 Processor Local APIC Structure.
struct MadtLocalApic {
    uint8_t type = kMadtTypeLocalApic;
    uint8_t length = 8;
    uint8_t processor_uid = 0;
    uint8_t apic_id = 0;
    uint32_t flags = 0;  // kMadtLocalApicEnabled
};
static_assert(sizeof(MadtLocalApic) == 8);
inline constexpr uint32_t kMadtLocalApicEnabled = 1u << 0;

// §5.2.12 I/O APIC Structure.
struct MadtIoApic {
    uint8_t type = kMadtTypeIoApic;
    uint8_t length = 12;
    uint8_t io_apic_id = 0;
    uint8_t reserved = 0;
    uint32_t address = 0;
    uint32_t gsi_base = 0;
};
static_assert(sizeof(MadtIoApic) == 12);

// §5.2.12 Interrupt Source Override Structure.
struct MadtInterruptSourceOverride {
    uint8_t type = kMadtTypeInterruptSourceOverride;
    uint8_t length = 10;
    uint8_t bus = 0;  // 0 = ISA
    uint8_t source = 0;
    uint32_t gsi = 0;
    uint16_t flags = 0;  // MPS INTI flags; 0 = conforms to the bus (ISA: edge, active high)
};
static_assert(sizeof(MadtInterruptSourceOverride) == 10);

// §5.2.12 Local APIC NMI Structure.
struct MadtLocalApicNmi {
    uint8_t type = kMadtTypeLocalApicNmi;
    uint8_t length = 6;
    uint8_t processor_uid = 0;  // kMadtAllProcessors
    uint16_t flags = 0;
    uint8_t lint = 0;
};
static_assert(sizeof(MadtLocalApicNmi) == 6);
inline constexpr uint8_t kMadtAllProcessors = 0xff;

// PCI Firmware Specification 3.2 §4.1.2 MCFG: the header, 8 reserved bytes,
// then one allocation structure per ECAM range (Table 4-3).
struct McfgHeader {
    SdtHeader header;
    std::array<uint8_t, 8> reserved{};
};
static_assert(sizeof(McfgHeader) == 44);
struct McfgAllocation {
    uint64_t base_address = 0;  // ECAM base of bus 0 of the segment, even when start_bus > 0
    uint16_t segment = 0;
    uint8_t start_bus = 0;
    uint8_t end_bus = 0;
    uint32_t reserved = 0;
};
static_assert(sizeof(McfgAllocation) == 16);
inline constexpr uint8_t kMcfgRevision = 1;

#pragma pack(pop)

// The byte that makes `bytes` (with that byte counted as zero) sum to zero
// modulo 256 — the checksum rule of every ACPI table and of the MP tables.
[[nodiscard]] uint8_t checksum_byte(std::span<const uint8_t> bytes);
[[nodiscard]] uint8_t byte_sum(std::span<const uint8_t> bytes);

// A header for a table of `length` bytes, checksum left zero.
[[nodiscard]] SdtHeader make_sdt_header(const std::array<char, 4>& signature, uint32_t length, uint8_t revision);

// Sets the checksum byte of the whole table held in `table`.
void finish_sdt(std::span<uint8_t> table);

// Appends the bytes of a packed wire struct.
template <typename T>
void append_wire(std::vector<uint8_t>& out, const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* bytes = reinterpret_cast<const uint8_t*>(&value);
    out.insert(out.end(), bytes, bytes + sizeof(T));
}

}  // namespace keel::x86::acpi
