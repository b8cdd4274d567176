#pragma once

// A small encoder for the ACPI Machine Language keel puts in its DSDT
// (ACPI 6.4 §20 "ACPI Machine Language (AML) Specification") and for the
// resource descriptors of _CRS buffers (§6.4 "Resource Data Types for ACPI").
//
// Every function returns the encoded bytes of one AML term or data object;
// callers nest them the way ASL nests blocks. The output is byte-identical to
// what iasl produces for the equivalent ASL (tests/unit/aml_test.cc checks
// this when iasl is installed). Invalid input — a bad name, an object too big
// for its length field — throws keel::Error: it can only come from keel's own
// device descriptions, never from a guest.

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace keel::x86::aml {

using Bytes = std::vector<uint8_t>;

// §20.2.4 Package Length Encoding: the PkgLength that precedes a body of
// `body_length` bytes. It counts itself, so it takes 1 byte up to 63 total,
// then 2 (up to 2^12 - 1), 3 (2^20 - 1) or 4 (2^28 - 1) bytes.
[[nodiscard]] Bytes pkg_length(size_t body_length);

// §20.2.2 Name Objects Encoding. `path` is ASL-style: an optional '\' (root)
// or '^' prefixes, then dot-separated segments of 1..4 characters
// ([A-Z_][A-Z0-9_]*), padded with '_' as iasl does ("KBD" -> "KBD_").
[[nodiscard]] Bytes name_string(std::string_view path);

// --- §20.2.3 Data Objects Encoding ---
// The shortest encoding: ZeroOp, OneOp, then Byte/Word/DWord/QWordPrefix.
[[nodiscard]] Bytes integer(uint64_t value);
// StringPrefix, ASCII characters 0x01..0x7f, NUL.
[[nodiscard]] Bytes string(std::string_view text);
// ASL EISAID("PNP0501"): three upper-case letters and four hex digits
// compressed into a DWord (§6.1.5 "_HID (Hardware ID)"), always DWordPrefix.
[[nodiscard]] Bytes eisa_id(std::string_view id);

// --- §20.2.5 Term Objects Encoding ---
// PackageOp with up to 255 elements, each an encoded data object.
[[nodiscard]] Bytes package(const std::vector<Bytes>& elements);
// BufferOp holding `data`.
[[nodiscard]] Bytes buffer(std::span<const uint8_t> data);
// Name(name, object).
[[nodiscard]] Bytes name(std::string_view name, const Bytes& object);
// Scope(path) { terms }.
[[nodiscard]] Bytes scope(std::string_view path, const std::vector<Bytes>& terms);
// Device(path) { terms }.
[[nodiscard]] Bytes device(std::string_view path, const std::vector<Bytes>& terms);

enum class MethodSerialization : uint8_t { kNotSerialized, kSerialized };
// Method(name, arg_count, serialization) { terms }; arg_count <= 7.
[[nodiscard]] Bytes method(std::string_view name, uint8_t arg_count, MethodSerialization serialization,
                           const std::vector<Bytes>& terms);
// Return(value).
[[nodiscard]] Bytes return_value(const Bytes& value);

// --- §6.4 resource descriptors, collected into a ResourceTemplate buffer ---
enum class InterruptTrigger : uint8_t { kLevel, kEdge };
enum class InterruptPolarity : uint8_t { kActiveHigh, kActiveLow };
enum class InterruptSharing : uint8_t { kExclusive, kShared };
enum class MemoryAccess : uint8_t { kReadOnly, kReadWrite };

class ResourceTemplate {
public:
    // §6.4.2.5 I/O Port Descriptor: IO(Decode16, base, base, 1, length).
    ResourceTemplate& io(uint16_t base, uint8_t length);
    // §6.4.2.1 IRQ Descriptor without the information byte: IRQNoFlags(){irq},
    // an ISA interrupt (edge, active high, exclusive); irq <= 15.
    ResourceTemplate& irq_no_flags(uint8_t irq);
    // §6.4.3.6 Extended Interrupt Descriptor for one interrupt, consumed by
    // the device: Interrupt(ResourceConsumer, trigger, polarity, sharing){gsi}.
    ResourceTemplate& interrupt(uint32_t gsi, InterruptTrigger trigger, InterruptPolarity polarity,
                                InterruptSharing sharing);
    // §6.4.3.4 32-Bit Fixed Memory Range Descriptor: Memory32Fixed(access, base, length).
    ResourceTemplate& memory32_fixed(MemoryAccess access, uint32_t base, uint32_t length);
    // §6.4.3.5.3 Word Address Space Descriptor for bus numbers, as a bridge
    // produces them: WordBusNumber(ResourceProducer, MinFixed, MaxFixed,
    // PosDecode, 0, first, last, 0, last - first + 1). first <= last.
    ResourceTemplate& word_bus_number(uint16_t first, uint16_t last);
    // §6.4.3.5.2 DWord Address Space Descriptor for a memory window a bridge
    // produces: DWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed,
    // NonCacheable, ReadWrite, 0, base, base + length - 1, 0, length).
    // length > 0 and the window below 4 GiB.
    ResourceTemplate& dword_memory_window(uint32_t base, uint32_t length);

    // The buffer object: the descriptors, then the §6.4.2.9 End Tag. Its
    // checksum byte is zero, which the spec defines as "treat as valid" and
    // which is what iasl and firmware emit.
    [[nodiscard]] Bytes encode() const;

private:
    Bytes m_descriptors;
};

}  // namespace keel::x86::aml
