#include "loader/elf_pvh.h"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "arch/x86_64/layout.h"
#include "common/error.h"
#include "common/units.h"
#include "loader/format.h"

namespace keel {

namespace {

// Xen's note owner name, NUL included (namesz == 4).
constexpr char kXenNoteName[] = "Xen";

[[noreturn]] void fail(const std::string& name, const std::string& problem) {
    throw Error("kernel image '" + name + "' " + problem);
}

bool in_file(uint64_t offset, uint64_t size, uint64_t file_size) {
    return offset <= file_size && size <= file_size - offset;
}

// Callers check [offset, offset + sizeof(T)) lies inside `bytes` first.
template <typename T>
T read_at(std::span<const uint8_t> bytes, uint64_t offset) {
    T value{};
    std::memcpy(&value, bytes.data() + offset, sizeof value);
    return value;
}

uint64_t align_up(uint64_t value, uint64_t alignment) { return (value + alignment - 1) & ~(alignment - 1); }

// gABI: ELF64 notes are 8-byte aligned, but Linux (and most toolchains) emit
// 4-byte aligned notes with p_align/sh_addralign 4; follow what the header says.
uint64_t note_alignment(uint64_t declared) { return declared == 8 ? 8 : 4; }

Elf64_Ehdr read_elf_header(std::span<const uint8_t> image, const std::string& name) {
    if (image.size() < sizeof(Elf64_Ehdr)) {
        fail(name, "is truncated: " + std::to_string(image.size()) + " bytes, too short for an ELF header");
    }
    const auto ehdr = read_at<Elf64_Ehdr>(image, 0);
    if (std::memcmp(ehdr.e_ident, ELFMAG, SELFMAG) != 0) fail(name, "is not an ELF file");
    if (ehdr.e_ident[EI_CLASS] != ELFCLASS64) {
        fail(name, "is a 32-bit ELF (or of unknown class); keel needs a 64-bit x86_64 vmlinux");
    }
    if (ehdr.e_ident[EI_DATA] != ELFDATA2LSB) fail(name, "is a big-endian ELF; keel needs an x86_64 vmlinux");
    if (ehdr.e_machine != EM_X86_64) {
        fail(name, "is an ELF for machine " + std::to_string(ehdr.e_machine) + ", not x86_64 (EM_X86_64 = 62)");
    }
    if (ehdr.e_type != ET_EXEC) {
        fail(name, "is an ELF of type " + std::to_string(ehdr.e_type) + ", not an executable (ET_EXEC) vmlinux");
    }
    if (ehdr.e_phnum == 0) fail(name, "is an ELF without program headers");
    if (ehdr.e_phentsize != sizeof(Elf64_Phdr) ||
        !in_file(ehdr.e_phoff, uint64_t{ehdr.e_phnum} * sizeof(Elf64_Phdr), image.size())) {
        fail(name, "has a program header table outside the file or of an unexpected entry size");
    }
    return ehdr;
}

std::vector<Elf64_Phdr> read_program_headers(std::span<const uint8_t> image, const Elf64_Ehdr& ehdr) {
    std::vector<Elf64_Phdr> phdrs;
    phdrs.reserve(ehdr.e_phnum);
    for (uint64_t i = 0; i < ehdr.e_phnum; ++i) {
        phdrs.push_back(read_at<Elf64_Phdr>(image, ehdr.e_phoff + i * sizeof(Elf64_Phdr)));
    }
    return phdrs;
}

ElfLoadSegment check_load_segment(const Elf64_Phdr& ph, size_t index, uint64_t file_size, const std::string& name) {
    const std::string what = "has a PT_LOAD segment (program header " + std::to_string(index) + ") ";
    if (ph.p_filesz > ph.p_memsz) {
        fail(name, what + "with p_filesz " + to_hex(ph.p_filesz) + " larger than p_memsz " + to_hex(ph.p_memsz));
    }
    if (!in_file(ph.p_offset, ph.p_filesz, file_size)) {
        fail(name, what + "at file offset " + to_hex(ph.p_offset) + " size " + to_hex(ph.p_filesz) +
                       " that extends past the end of the file (" + std::to_string(file_size) + " bytes)");
    }
    if (!Gpa(ph.p_paddr).checked_add(ph.p_memsz)) {
        fail(name, what + "at " + to_hex(ph.p_paddr) + " size " + to_hex(ph.p_memsz) + " that wraps the address space");
    }
    if (ph.p_paddr < x86::kHighMemStart.value) {
        fail(name, what + "at " + to_hex(ph.p_paddr) + ", below 1 MiB where keel's boot structures live");
    }
    return ElfLoadSegment{ph.p_offset, ph.p_filesz, Gpa(ph.p_paddr), ph.p_memsz};
}

std::vector<ElfLoadSegment> collect_load_segments(const std::vector<Elf64_Phdr>& phdrs, uint64_t file_size,
                                                  const std::string& name) {
    std::vector<ElfLoadSegment> segments;
    for (size_t i = 0; i < phdrs.size(); ++i) {
        if (phdrs[i].p_type != PT_LOAD || phdrs[i].p_memsz == 0) continue;
        segments.push_back(check_load_segment(phdrs[i], i, file_size, name));
    }
    if (segments.empty()) fail(name, "is an ELF without loadable (PT_LOAD) segments");
    std::sort(segments.begin(), segments.end(), [](const auto& a, const auto& b) { return a.paddr < b.paddr; });
    for (size_t i = 1; i < segments.size(); ++i) {
        const auto& prev = segments[i - 1];
        if (prev.paddr.value + prev.mem_size > segments[i].paddr.value) {
            fail(name, "has overlapping PT_LOAD segments at " + to_hex(prev.paddr.value) + " and " +
                           to_hex(segments[i].paddr.value));
        }
    }
    return segments;
}

uint64_t pvh_entry_value(std::span<const uint8_t> desc, const std::string& name) {
    // Linux emits the value with _ASM_PTR (8 bytes on x86_64); Xen reads 32 bits.
    if (desc.size() == sizeof(uint32_t)) return read_at<uint32_t>(desc, 0);
    if (desc.size() == sizeof(uint64_t)) {
        const auto value = read_at<uint64_t>(desc, 0);
        if (value > UINT32_MAX) fail(name, "has a PVH entry point " + to_hex(value) + " above 4 GiB");
        return value;
    }
    fail(name, "has a PVH entry note with a " + std::to_string(desc.size()) + "-byte value (expected 4 or 8)");
}

// Walks one note area (a PT_NOTE segment or SHT_NOTE section) for
// XEN_ELFNOTE_PHYS32_ENTRY; a malformed note is an error, not a silent skip.
std::optional<uint64_t> find_pvh_note(std::span<const uint8_t> notes, uint64_t alignment, const std::string& name) {
    uint64_t pos = 0;
    while (notes.size() - pos >= sizeof(Elf64_Nhdr)) {
        const auto nhdr = read_at<Elf64_Nhdr>(notes, pos);
        const uint64_t name_offset = pos + sizeof(Elf64_Nhdr);
        const uint64_t desc_offset = name_offset + align_up(nhdr.n_namesz, alignment);
        if (!in_file(name_offset, nhdr.n_namesz, notes.size()) || !in_file(desc_offset, nhdr.n_descsz, notes.size())) {
            fail(name, "has a malformed ELF note (its name or value runs past the note area)");
        }
        if (nhdr.n_type == kXenElfnotePhys32Entry && nhdr.n_namesz == sizeof kXenNoteName &&
            std::memcmp(notes.data() + name_offset, kXenNoteName, sizeof kXenNoteName) == 0) {
            return pvh_entry_value(notes.subspan(desc_offset, nhdr.n_descsz), name);
        }
        pos = std::min<uint64_t>(desc_offset + align_up(nhdr.n_descsz, alignment), notes.size());
    }
    return std::nullopt;
}

std::optional<uint64_t> find_pvh_note_in_segments(std::span<const uint8_t> image, const std::vector<Elf64_Phdr>& phdrs,
                                                  const std::string& name) {
    for (const auto& ph : phdrs) {
        if (ph.p_type != PT_NOTE) continue;
        if (!in_file(ph.p_offset, ph.p_filesz, image.size())) fail(name, "has a PT_NOTE segment outside the file");
        if (auto entry = find_pvh_note(image.subspan(ph.p_offset, ph.p_filesz), note_alignment(ph.p_align), name)) {
            return entry;
        }
    }
    return std::nullopt;
}

// Fallback for images whose notes are only described by sections.
std::optional<uint64_t> find_pvh_note_in_sections(std::span<const uint8_t> image, const Elf64_Ehdr& ehdr,
                                                  const std::string& name) {
    if (ehdr.e_shnum == 0 || ehdr.e_shentsize != sizeof(Elf64_Shdr) ||
        !in_file(ehdr.e_shoff, uint64_t{ehdr.e_shnum} * sizeof(Elf64_Shdr), image.size())) {
        return std::nullopt;
    }
    for (uint64_t i = 0; i < ehdr.e_shnum; ++i) {
        const auto sh = read_at<Elf64_Shdr>(image, ehdr.e_shoff + i * sizeof(Elf64_Shdr));
        if (sh.sh_type != SHT_NOTE) continue;
        if (!in_file(sh.sh_offset, sh.sh_size, image.size())) fail(name, "has a SHT_NOTE section outside the file");
        if (auto entry = find_pvh_note(image.subspan(sh.sh_offset, sh.sh_size), note_alignment(sh.sh_addralign), name)) {
            return entry;
        }
    }
    return std::nullopt;
}

bool entry_in_segments(uint64_t entry, const std::vector<ElfLoadSegment>& segments) {
    return std::any_of(segments.begin(), segments.end(), [entry](const auto& s) {
        return entry >= s.paddr.value && entry - s.paddr.value < s.file_size;
    });
}

}  // namespace

ElfPvhImage parse_elf_pvh(std::span<const uint8_t> image, const std::string& name) {
    const Elf64_Ehdr ehdr = read_elf_header(image, name);
    const std::vector<Elf64_Phdr> phdrs = read_program_headers(image, ehdr);
    ElfPvhImage elf;
    elf.segments = collect_load_segments(phdrs, image.size(), name);
    std::optional<uint64_t> entry = find_pvh_note_in_segments(image, phdrs, name);
    if (!entry) entry = find_pvh_note_in_sections(image, ehdr, name);
    if (!entry) {
        fail(name, "is an ELF vmlinux without a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); "
                   "build it with CONFIG_PVH=y or use the bzImage");
    }
    if (!entry_in_segments(*entry, elf.segments)) {
        fail(name, "has a PVH entry point " + to_hex(*entry) + " outside its loadable segments");
    }
    elf.pvh_entry = Gpa(*entry);
    return elf;
}

LoadedKernel load_elf_pvh(std::span<const uint8_t> image, const GuestMemory& mem, const std::string& name) {
    const ElfPvhImage elf = parse_elf_pvh(image, name);
    Gpa end = x86::kHighMemStart;
    for (const auto& seg : elf.segments) {
        const auto slice = mem.slice(seg.paddr, seg.mem_size);
        if (!slice) {
            fail(name, "has a segment at " + to_hex(seg.paddr.value) + " (" + approx_size(seg.mem_size) +
                           ") that does not fit in guest memory (" + format_size(mem.total_size()) +
                           "); give the VM more memory");
        }
        (void)mem.populate_for_write(seg.paddr, seg.file_size);
        slice->copy_from(image.subspan(seg.file_offset, seg.file_size));
        // The bss tail: guest RAM starts zeroed, but a reused VM's would not be.
        if (auto bss = mem.slice(seg.paddr.unchecked_add(seg.file_size), seg.mem_size - seg.file_size)) {
            bss->fill(0);
        }
        end = std::max(end, seg.paddr.unchecked_add(seg.mem_size));
    }
    LoadedKernel kernel;
    kernel.protocol = BootProtocol::Pvh;
    kernel.entry = elf.pvh_entry;
    kernel.end = end;
    kernel.initrd_limit = x86::kMmioHoleStart;
    return kernel;
}

}  // namespace keel
