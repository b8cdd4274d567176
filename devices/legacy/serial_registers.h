#pragma once

// The 16550A register file as a table, so a reviewer can diff it against the
// datasheet (TI/National PC16550D, "Table 2. Summary of Registers" and §8.x
// reset column). Register offsets and bit names come from the UAPI header
// <linux/serial_reg.h>; this table only adds what the header cannot say: which
// direction and DLAB state select each register, and its reset value.

#include <linux/serial_reg.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace keel::uart {

enum class Register : uint8_t { Rbr, Thr, Ier, Iir, Fcr, Lcr, Mcr, Lsr, Msr, Scr, Dll, Dlm, None };

// LCR bit 7 (DLAB) switches offsets 0 and 1 to the divisor latch.
enum class Dlab : uint8_t { Any, Clear, Set };
enum class Access : uint8_t { ReadOnly, WriteOnly, ReadWrite };
enum class Direction : uint8_t { Read, Write };

struct RegisterSpec {
    Register id;
    std::string_view name;
    uint8_t offset;
    Dlab dlab;
    Access access;
    uint8_t reset_value;  // what a read returns after reset (for write-only: the latched value)
};

inline constexpr uint8_t kPortCount = 8;

// The datasheet leaves the divisor latch undefined at reset; 12 (9600 baud
// from the 1.8432 MHz clock) matches QEMU, and a non-zero divisor matters:
// Linux's earlycon (8250_early.c probe_baud) divides by it.
inline constexpr uint8_t kResetDivisorLow = 12;

// IIR reads 0x01 (no interrupt); LSR 0x60 (THRE | TEMT: nothing to send);
// MSR 0xB0: keel reports DCD, DSR and CTS asserted — a console that is always
// connected and ready — with no delta bits.
inline constexpr std::array<RegisterSpec, 12> kRegisters{{
    {Register::Rbr, "RBR", UART_RX, Dlab::Clear, Access::ReadOnly, 0x00},
    {Register::Thr, "THR", UART_TX, Dlab::Clear, Access::WriteOnly, 0x00},
    {Register::Ier, "IER", UART_IER, Dlab::Clear, Access::ReadWrite, 0x00},
    {Register::Iir, "IIR", UART_IIR, Dlab::Any, Access::ReadOnly, UART_IIR_NO_INT},
    {Register::Fcr, "FCR", UART_FCR, Dlab::Any, Access::WriteOnly, 0x00},
    {Register::Lcr, "LCR", UART_LCR, Dlab::Any, Access::ReadWrite, 0x00},
    {Register::Mcr, "MCR", UART_MCR, Dlab::Any, Access::ReadWrite, 0x00},
    {Register::Lsr, "LSR", UART_LSR, Dlab::Any, Access::ReadOnly, UART_LSR_THRE | UART_LSR_TEMT},
    {Register::Msr, "MSR", UART_MSR, Dlab::Any, Access::ReadOnly, UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS},
    {Register::Scr, "SCR", UART_SCR, Dlab::Any, Access::ReadWrite, 0x00},
    {Register::Dll, "DLL", UART_DLL, Dlab::Set, Access::ReadWrite, kResetDivisorLow},
    {Register::Dlm, "DLM", UART_DLM, Dlab::Set, Access::ReadWrite, 0x00},
}};

constexpr bool selects(const RegisterSpec& spec, uint8_t offset, bool dlab, Direction dir) {
    const bool dlab_ok = spec.dlab == Dlab::Any || (spec.dlab == Dlab::Set) == dlab;
    const bool dir_ok = spec.access == Access::ReadWrite ||
                        (spec.access == Access::ReadOnly) == (dir == Direction::Read);
    return spec.offset == offset && dlab_ok && dir_ok;
}

// How many table rows an access selects: the decode tables below require 0 or 1.
constexpr size_t matches(uint8_t offset, bool dlab, Direction dir) {
    size_t n = 0;
    for (const auto& spec : kRegisters) if (selects(spec, offset, dlab, dir)) ++n;
    return n;
}

constexpr Register decode(uint8_t offset, bool dlab, Direction dir) {
    for (const auto& spec : kRegisters) {
        if (selects(spec, offset, dlab, dir)) return spec.id;
    }
    return Register::None;  // e.g. writes to LSR/MSR: ignored, as on the 16550
}

constexpr const RegisterSpec& spec_of(Register id) {
    for (const auto& spec : kRegisters) {
        if (spec.id == id) return spec;
    }
    return kRegisters[0];  // unreachable for the ids in the table (checked below)
}

// Precomputed decode: index = (dlab ? 8 : 0) + offset.
using DecodeTable = std::array<Register, 2 * kPortCount>;

constexpr size_t decode_index(uint8_t offset, bool dlab) {
    return (dlab ? size_t{kPortCount} : size_t{0}) + offset;
}

constexpr DecodeTable make_decode_table(Direction dir) {
    DecodeTable table{};
    for (uint8_t offset = 0; offset < kPortCount; ++offset) {
        table[decode_index(offset, false)] = decode(offset, false, dir);
        table[decode_index(offset, true)] = decode(offset, true, dir);
    }
    return table;
}

inline constexpr DecodeTable kReadDecode = make_decode_table(Direction::Read);
inline constexpr DecodeTable kWriteDecode = make_decode_table(Direction::Write);

constexpr bool table_is_unambiguous() {
    for (uint8_t offset = 0; offset < kPortCount; ++offset) {
        for (const bool dlab : {false, true}) {
            if (matches(offset, dlab, Direction::Read) > 1 || matches(offset, dlab, Direction::Write) > 1) return false;
        }
    }
    return true;
}

constexpr bool every_read_is_defined() {
    for (const auto reg : kReadDecode) {
        if (reg == Register::None) return false;
    }
    return true;
}

static_assert(table_is_unambiguous(), "two 16550 registers claim the same offset/DLAB/direction");
static_assert(every_read_is_defined(), "every 16550 offset is readable in both DLAB states");
static_assert(kWriteDecode[decode_index(UART_LSR, false)] == Register::None && kWriteDecode[decode_index(UART_MSR, true)] == Register::None);
static_assert(kReadDecode[decode_index(UART_DLL, true)] == Register::Dll);
static_assert(kReadDecode[decode_index(UART_RX, false)] == Register::Rbr);
static_assert(spec_of(Register::Dlm).id == Register::Dlm && spec_of(Register::Rbr).id == Register::Rbr);

}  // namespace keel::uart
