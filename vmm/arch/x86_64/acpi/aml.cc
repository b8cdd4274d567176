#include "arch/x86_64/acpi/aml.h"

#include <algorithm>
#include <string>

#include "common/error.h"

namespace keel::x86::aml {

namespace {

// §20.2 opcodes and prefixes.
constexpr uint8_t kZeroOp = 0x00;
constexpr uint8_t kOneOp = 0x01;
constexpr uint8_t kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0a;
constexpr uint8_t kWordPrefix = 0x0b;
constexpr uint8_t kDWordPrefix = 0x0c;
constexpr uint8_t kStringPrefix = 0x0d;
constexpr uint8_t kQWordPrefix = 0x0e;
constexpr uint8_t kScopeOp = 0x10;
constexpr uint8_t kBufferOp = 0x11;
constexpr uint8_t kPackageOp = 0x12;
constexpr uint8_t kMethodOp = 0x14;
constexpr uint8_t kDualNamePrefix = 0x2e;
constexpr uint8_t kMultiNamePrefix = 0x2f;
constexpr uint8_t kExtOpPrefix = 0x5b;
constexpr uint8_t kDeviceOp = 0x82;  // after ExtOpPrefix
constexpr uint8_t kRootChar = '\\';
constexpr uint8_t kParentPrefixChar = '^';
constexpr uint8_t kNullName = 0x00;
constexpr uint8_t kReturnOp = 0xa4;

// §6.4.2 small and §6.4.3 large resource descriptor tags.
constexpr uint8_t kIrqNoFlagsTag = 0x22;        // small item 0x4, length 2
constexpr uint8_t kIoPortTag = 0x47;            // small item 0x8, length 7
constexpr uint8_t kEndTag = 0x79;               // small item 0xf, length 1
constexpr uint8_t kMemory32FixedTag = 0x86;     // large item 0x6
constexpr uint8_t kExtendedInterruptTag = 0x89; // large item 0x9
constexpr uint8_t kDWordAddressSpaceTag = 0x87;  // large item 0x7
constexpr uint8_t kWordAddressSpaceTag = 0x88;   // large item 0x8
// §6.4.3.5 address space descriptors: resource types and general flags.
constexpr uint8_t kResourceTypeMemory = 0;
constexpr uint8_t kResourceTypeBusNumber = 2;
// Producer (bit 0 clear), positive decode (bit 1 clear), MinFixed (bit 2), MaxFixed (bit 3).
constexpr uint8_t kProducerFixedRange = 0x0c;
constexpr uint8_t kMemoryReadWrite = 0x01;  // type-specific flags: RW, non-cacheable, AddressRangeMemory
constexpr uint8_t kIoDecode16 = 0x01;

constexpr size_t kNameSegLength = 4;

void append(Bytes& out, const Bytes& more) { out.insert(out.end(), more.begin(), more.end()); }

void append_le(Bytes& out, uint64_t value, size_t bytes) {
    for (size_t i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

bool is_lead_name_char(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_lead_name_char(c) || (c >= '0' && c <= '9'); }

void append_name_seg(Bytes& out, std::string_view seg, std::string_view path) {
    if (seg.empty() || seg.size() > kNameSegLength || !is_lead_name_char(seg[0])) {
        throw Error("AML name '" + std::string(path) + "' has an invalid segment '" + std::string(seg) +
                    "': segments are 1-4 characters [A-Z_][A-Z0-9_]*");
    }
    for (char c : seg) {
        if (!is_name_char(c)) {
            throw Error("AML name '" + std::string(path) + "' contains '" + std::string(1, c) +
                        "': only A-Z, 0-9 and _ are allowed");
        }
        out.push_back(static_cast<uint8_t>(c));
    }
    out.insert(out.end(), kNameSegLength - seg.size(), static_cast<uint8_t>('_'));
}

// Opcode, PkgLength, then `body`: the shape of every block-structured term.
Bytes with_pkg_length(std::initializer_list<uint8_t> opcode, const Bytes& body) {
    Bytes out(opcode);
    append(out, pkg_length(body.size()));
    append(out, body);
    return out;
}

Bytes name_then_terms(std::string_view path, const std::vector<Bytes>& terms) {
    Bytes body = name_string(path);
    for (const auto& term : terms) append(body, term);
    return body;
}

}  // namespace

Bytes pkg_length(size_t body_length) {
    // The encoded value counts the PkgLength bytes themselves.
    if (body_length < 0x3f) return {static_cast<uint8_t>(body_length + 1)};
    for (size_t extra = 1; extra <= 3; ++extra) {
        const size_t max_total = (size_t{1} << (4 + 8 * extra)) - 1;
        if (body_length > max_total - 1 - extra) continue;
        const size_t total = body_length + 1 + extra;
        // Byte 0: bits 7-6 = count of following bytes, bits 3-0 = the low
        // nibble; the following bytes hold the rest, least significant first.
        Bytes out{static_cast<uint8_t>((extra << 6) | (total & 0x0f))};
        append_le(out, total >> 4, extra);
        return out;
    }
    throw Error("AML object of " + std::to_string(body_length) +
                " bytes exceeds the 2^28-1 byte limit of a PkgLength");
}

Bytes name_string(std::string_view path) {
    Bytes out;
    size_t pos = 0;
    if (!path.empty() && path[0] == '\\') {
        out.push_back(kRootChar);
        pos = 1;
    } else {
        while (pos < path.size() && path[pos] == '^') {
            out.push_back(kParentPrefixChar);
            ++pos;
        }
    }
    std::vector<std::string_view> segs;
    for (size_t start = pos; start <= path.size();) {
        const size_t dot = std::min(path.find('.', start), path.size());
        segs.push_back(path.substr(start, dot - start));
        start = dot + 1;
    }
    if (segs.size() == 1 && segs[0].empty() && pos > 0) {  // "\" alone
        out.push_back(kNullName);
        return out;
    }
    if (segs.size() > 255) throw Error("AML name '" + std::string(path) + "' has more than 255 segments");
    if (segs.size() == 2) out.push_back(kDualNamePrefix);
    if (segs.size() > 2) {
        out.push_back(kMultiNamePrefix);
        out.push_back(static_cast<uint8_t>(segs.size()));
    }
    for (auto seg : segs) append_name_seg(out, seg, path);
    return out;
}

Bytes integer(uint64_t value) {
    if (value == 0) return {kZeroOp};
    if (value == 1) return {kOneOp};
    Bytes out;
    if (value <= UINT8_MAX) {
        out.push_back(kBytePrefix);
        append_le(out, value, 1);
    } else if (value <= UINT16_MAX) {
        out.push_back(kWordPrefix);
        append_le(out, value, 2);
    } else if (value <= UINT32_MAX) {
        out.push_back(kDWordPrefix);
        append_le(out, value, 4);
    } else {
        out.push_back(kQWordPrefix);
        append_le(out, value, 8);
    }
    return out;
}

Bytes string(std::string_view text) {
    Bytes out{kStringPrefix};
    for (char c : text) {
        if (c <= 0 || static_cast<unsigned char>(c) > 0x7f) {
            throw Error("AML string '" + std::string(text) + "' has a character outside ASCII 0x01-0x7f");
        }
        out.push_back(static_cast<uint8_t>(c));
    }
    out.push_back(0);
    return out;
}

Bytes eisa_id(std::string_view id) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    bool valid = id.size() == 7;
    for (size_t i = 0; valid && i < 3; ++i) valid = id[i] >= 'A' && id[i] <= 'Z';
    for (size_t i = 3; valid && i < 7; ++i) valid = hex(id[i]) >= 0;
    if (!valid) {
        throw Error("EISA ID '" + std::string(id) + "' is not three letters A-Z and four hex digits 0-9A-F");
    }
    // Each letter as 5 bits ('A' = 1), then the four hex digits; stored
    // most-significant byte first (the "compressed EISA type ID").
    auto letter = [&](size_t i) { return static_cast<uint32_t>(id[i] - '@'); };
    auto digit = [&](size_t i) { return static_cast<uint32_t>(hex(id[i])); };
    const uint32_t b0 = (letter(0) << 2) | (letter(1) >> 3);
    const uint32_t b1 = ((letter(1) & 0x7) << 5) | letter(2);
    const uint32_t b2 = (digit(3) << 4) | digit(4);
    const uint32_t b3 = (digit(5) << 4) | digit(6);
    return {kDWordPrefix, static_cast<uint8_t>(b0), static_cast<uint8_t>(b1), static_cast<uint8_t>(b2),
            static_cast<uint8_t>(b3)};
}

Bytes package(const std::vector<Bytes>& elements) {
    if (elements.size() > UINT8_MAX) {
        throw Error("AML package of " + std::to_string(elements.size()) + " elements exceeds 255");
    }
    Bytes body{static_cast<uint8_t>(elements.size())};
    for (const auto& element : elements) append(body, element);
    return with_pkg_length({kPackageOp}, body);
}

Bytes buffer(std::span<const uint8_t> data) {
    Bytes body = integer(data.size());
    body.insert(body.end(), data.begin(), data.end());
    return with_pkg_length({kBufferOp}, body);
}

Bytes name(std::string_view name, const Bytes& object) {
    Bytes out{kNameOp};
    append(out, name_string(name));
    append(out, object);
    return out;
}

Bytes scope(std::string_view path, const std::vector<Bytes>& terms) {
    return with_pkg_length({kScopeOp}, name_then_terms(path, terms));
}

Bytes device(std::string_view path, const std::vector<Bytes>& terms) {
    return with_pkg_length({kExtOpPrefix, kDeviceOp}, name_then_terms(path, terms));
}

Bytes method(std::string_view name, uint8_t arg_count, MethodSerialization serialization,
             const std::vector<Bytes>& terms) {
    if (arg_count > 7) throw Error("AML method '" + std::string(name) + "' takes at most 7 arguments");
    // MethodFlags: bits 0-2 ArgCount, bit 3 SerializeFlag, bits 4-7 SyncLevel (0).
    const auto flags = static_cast<uint8_t>(
        arg_count | (serialization == MethodSerialization::kSerialized ? 0x08 : 0x00));
    Bytes body = name_string(name);
    body.push_back(flags);
    for (const auto& term : terms) append(body, term);
    return with_pkg_length({kMethodOp}, body);
}

Bytes return_value(const Bytes& value) {
    Bytes out{kReturnOp};
    append(out, value);
    return out;
}

ResourceTemplate& ResourceTemplate::io(uint16_t base, uint8_t length) {
    // Information byte bit 0: decodes all 16 address bits. Min = max = base,
    // alignment 1: a fixed range.
    m_descriptors.insert(m_descriptors.end(), {kIoPortTag, kIoDecode16});
    append_le(m_descriptors, base, 2);
    append_le(m_descriptors, base, 2);
    m_descriptors.insert(m_descriptors.end(), {1, length});
    return *this;
}

ResourceTemplate& ResourceTemplate::irq_no_flags(uint8_t irq) {
    if (irq > 15) throw Error("IRQ descriptor for IRQ " + std::to_string(irq) + ": ISA IRQs are 0-15");
    m_descriptors.push_back(kIrqNoFlagsTag);
    append_le(m_descriptors, 1u << irq, 2);  // mask of IRQs 0-15
    return *this;
}

ResourceTemplate& ResourceTemplate::interrupt(uint32_t gsi, InterruptTrigger trigger, InterruptPolarity polarity,
                                              InterruptSharing sharing) {
    // Flags: bit 0 consumer, bit 1 edge, bit 2 active low, bit 3 shared.
    uint8_t flags = 0x01;
    if (trigger == InterruptTrigger::kEdge) flags |= 0x02;
    if (polarity == InterruptPolarity::kActiveLow) flags |= 0x04;
    if (sharing == InterruptSharing::kShared) flags |= 0x08;
    m_descriptors.push_back(kExtendedInterruptTag);
    append_le(m_descriptors, 6, 2);  // length after the 3-byte header: flags, count, one DWord
    m_descriptors.insert(m_descriptors.end(), {flags, 1});
    append_le(m_descriptors, gsi, 4);
    return *this;
}

ResourceTemplate& ResourceTemplate::memory32_fixed(MemoryAccess access, uint32_t base, uint32_t length) {
    m_descriptors.push_back(kMemory32FixedTag);
    append_le(m_descriptors, 9, 2);  // information byte, base, length
    m_descriptors.push_back(access == MemoryAccess::kReadWrite ? 0x01 : 0x00);
    append_le(m_descriptors, base, 4);
    append_le(m_descriptors, length, 4);
    return *this;
}

ResourceTemplate& ResourceTemplate::word_bus_number(uint16_t first, uint16_t last) {
    if (first > last) throw Error("WordBusNumber: bus range is empty");
    m_descriptors.push_back(kWordAddressSpaceTag);
    append_le(m_descriptors, 13, 2);  // type, general flags, type flags, 5 Words
    m_descriptors.insert(m_descriptors.end(), {kResourceTypeBusNumber, kProducerFixedRange, 0});
    append_le(m_descriptors, 0, 2);  // granularity
    append_le(m_descriptors, first, 2);
    append_le(m_descriptors, last, 2);
    append_le(m_descriptors, 0, 2);  // translation offset
    append_le(m_descriptors, uint32_t{last} - first + 1, 2);
    return *this;
}

ResourceTemplate& ResourceTemplate::dword_memory_window(uint32_t base, uint32_t length) {
    if (length == 0 || length - 1 > UINT32_MAX - base) {
        throw Error("DWordMemory: the window must be non-empty and lie below 4 GiB");
    }
    m_descriptors.push_back(kDWordAddressSpaceTag);
    append_le(m_descriptors, 23, 2);  // type, general flags, type flags, 5 DWords
    m_descriptors.insert(m_descriptors.end(), {kResourceTypeMemory, kProducerFixedRange, kMemoryReadWrite});
    append_le(m_descriptors, 0, 4);  // granularity
    append_le(m_descriptors, base, 4);
    append_le(m_descriptors, uint64_t{base} + length - 1, 4);
    append_le(m_descriptors, 0, 4);  // translation offset
    append_le(m_descriptors, length, 4);
    return *this;
}

Bytes ResourceTemplate::encode() const {
    Bytes data = m_descriptors;
    data.insert(data.end(), {kEndTag, 0});
    return buffer(data);
}

}  // namespace keel::x86::aml
