#include "arch/x86_64/gdt.h"

#include "arch/x86_64/layout.h"

namespace keel::x86 {
namespace {

// Descriptor fields (SDM Vol. 3A §3.4.5, Figure 3-8).
constexpr uint64_t bits(GdtEntry entry, unsigned shift, unsigned width) {
    return (entry >> shift) & ((uint64_t{1} << width) - 1);
}

uint64_t descriptor_base(GdtEntry entry) {
    return (bits(entry, 56, 8) << 24) | bits(entry, 16, 24);
}

uint32_t descriptor_limit(GdtEntry entry) {
    const auto raw = static_cast<uint32_t>((bits(entry, 48, 4) << 16) | bits(entry, 0, 16));
    // With G=1 the limit counts 4 KiB units and the low 12 bits read as ones
    // (§3.4.5 "Segment limit field"); KVM wants the expanded byte limit, and VM
    // entry checks that limit[11:0] are all ones whenever G=1.
    return bits(entry, 55, 1) != 0 ? (raw << 12) | 0xfff : raw;
}

uint8_t flag(GdtEntry entry, unsigned shift, unsigned width = 1) {
    return static_cast<uint8_t>(bits(entry, shift, width));
}

}  // namespace

BootGdt make_boot_gdt(BootProtocol protocol) {
    const uint16_t code_flags = protocol == BootProtocol::Linux64 ? kCode64Flags : kCode32Flags;
    BootGdt gdt{};
    gdt[0] = 0;
    gdt[kGdtTssIndex] = make_gdt_entry(kTssFlags, 0, kTssLimit);
    gdt[kGdtCodeIndex] = make_gdt_entry(code_flags, 0, kFlatLimit);
    gdt[kGdtDataIndex] = make_gdt_entry(kDataFlags, 0, kFlatLimit);
    return gdt;
}

kvm_segment segment_from_gdt_entry(GdtEntry entry, uint16_t table_index) {
    kvm_segment seg{};
    seg.base = descriptor_base(entry);
    seg.limit = descriptor_limit(entry);
    seg.selector = static_cast<uint16_t>(table_index * sizeof(GdtEntry));  // TI=0, RPL=0
    seg.type = flag(entry, 40, 4);
    seg.s = flag(entry, 44);
    seg.dpl = flag(entry, 45, 2);
    seg.present = flag(entry, 47);
    seg.avl = flag(entry, 52);
    seg.l = flag(entry, 53);
    seg.db = flag(entry, 54);
    seg.g = flag(entry, 55);
    seg.unusable = seg.present != 0 ? 0 : 1;
    return seg;
}

BootSegments boot_segments(const BootGdt& gdt) {
    return BootSegments{
        .code = segment_from_gdt_entry(gdt[kGdtCodeIndex], kGdtCodeIndex),
        .data = segment_from_gdt_entry(gdt[kGdtDataIndex], kGdtDataIndex),
        .tss = segment_from_gdt_entry(gdt[kGdtTssIndex], kGdtTssIndex),
    };
}

void write_boot_gdt(const GuestMemory& mem, const BootGdt& gdt) {
    static_assert(kGdtStart.value + sizeof(BootGdt) <= kIdtStart.value,
                  "the boot GDT must not overlap the IDT (layout.h)");
    mem.write_obj_or_throw(kGdtStart, gdt, "boot GDT");
    const uint64_t empty_idt = 0;
    mem.write_obj_or_throw(kIdtStart, empty_idt, "boot IDT");
}

}  // namespace keel::x86
