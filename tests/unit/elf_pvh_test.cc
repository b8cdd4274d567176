#include <catch2/catch.hpp>

#include <elf.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "loader/elf_pvh.h"
#include "loader/image_file.h"
#include "loader/kernel_loader.h"
#include "memory/guest_memory.h"

using namespace keel;

namespace {

constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kTextPaddr = 0x1000000;  // where vmlinux's .text lives (16 MiB)
constexpr uint64_t kEntry = 0x1000040;

struct NoteSpec {
    std::string name = "Xen";
    uint32_t type = kXenElfnotePhys32Entry;
    std::vector<uint8_t> desc;
};

std::vector<uint8_t> le_bytes(uint64_t value, size_t size) {
    std::vector<uint8_t> out(size);
    for (size_t i = 0; i < size && i < sizeof value; ++i) out[i] = static_cast<uint8_t>(value >> (8 * i));
    return out;
}

// Builds a vmlinux-shaped ELF: header, program headers, then each segment's
// bytes; optionally a PT_NOTE segment (or only a SHT_NOTE section) holding notes.
struct ElfBuilder {
    struct Segment {
        uint64_t paddr;
        uint64_t file_size;
        uint64_t mem_size;
    };
    std::vector<Segment> segments{{kTextPaddr, 0x2000, 0x3000}, {kTextPaddr + 0x200000, 0x1000, 0x1000}};
    std::vector<NoteSpec> notes{{"Xen", kXenElfnotePhys32Entry, le_bytes(kEntry, 8)}};
    bool notes_as_section = false;
    uint8_t elf_class = ELFCLASS64;
    uint8_t data = ELFDATA2LSB;
    uint16_t machine = EM_X86_64;
    uint16_t type = ET_EXEC;

    std::vector<uint8_t> note_bytes() const {
        std::vector<uint8_t> out;
        const auto pad = [&out] { out.resize((out.size() + 3) & ~size_t{3}, 0); };
        for (const auto& n : notes) {
            const Elf64_Nhdr nhdr{static_cast<Elf64_Word>(n.name.size() + 1), static_cast<Elf64_Word>(n.desc.size()),
                                  n.type};
            const auto* raw = reinterpret_cast<const uint8_t*>(&nhdr);
            out.insert(out.end(), raw, raw + sizeof nhdr);
            out.insert(out.end(), n.name.begin(), n.name.end());
            out.push_back(0);
            pad();
            out.insert(out.end(), n.desc.begin(), n.desc.end());
            pad();
        }
        return out;
    }

    std::vector<uint8_t> build() const {
        const auto notes_blob = note_bytes();
        const bool note_segment = !notes.empty() && !notes_as_section;
        const size_t phnum = segments.size() + (note_segment ? 1 : 0);
        std::vector<uint8_t> image(sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr), 0);
        std::vector<Elf64_Phdr> phdrs;
        for (size_t i = 0; i < segments.size(); ++i) {
            const auto& s = segments[i];
            const uint64_t offset = image.size();
            image.resize(image.size() + s.file_size, static_cast<uint8_t>(0x10 + i));
            phdrs.push_back({PT_LOAD, PF_R | PF_X, offset, s.paddr + 0xffffffff80000000, s.paddr, s.file_size,
                             s.mem_size, 0x1000});
        }
        const uint64_t notes_offset = image.size();
        image.insert(image.end(), notes_blob.begin(), notes_blob.end());
        if (note_segment) phdrs.push_back({PT_NOTE, PF_R, notes_offset, 0, 0, notes_blob.size(), notes_blob.size(), 4});
        Elf64_Ehdr ehdr{};
        std::memcpy(ehdr.e_ident, ELFMAG, SELFMAG);
        ehdr.e_ident[EI_CLASS] = elf_class;
        ehdr.e_ident[EI_DATA] = data;
        ehdr.e_ident[EI_VERSION] = EV_CURRENT;
        ehdr.e_type = type;
        ehdr.e_machine = machine;
        ehdr.e_version = EV_CURRENT;
        ehdr.e_phoff = sizeof(Elf64_Ehdr);
        ehdr.e_ehsize = sizeof(Elf64_Ehdr);
        ehdr.e_phentsize = sizeof(Elf64_Phdr);
        ehdr.e_phnum = static_cast<uint16_t>(phnum);
        if (notes_as_section) {
            // Section 0 is the null section, section 1 the notes.
            ehdr.e_shoff = image.size();
            ehdr.e_shentsize = sizeof(Elf64_Shdr);
            ehdr.e_shnum = 2;
            Elf64_Shdr shdrs[2]{};
            shdrs[1].sh_type = SHT_NOTE;
            shdrs[1].sh_offset = notes_offset;
            shdrs[1].sh_size = notes_blob.size();
            shdrs[1].sh_addralign = 4;
            const auto* raw = reinterpret_cast<const uint8_t*>(shdrs);
            image.insert(image.end(), raw, raw + sizeof shdrs);
        }
        std::memcpy(image.data(), &ehdr, sizeof ehdr);
        std::memcpy(image.data() + sizeof ehdr, phdrs.data(), phdrs.size() * sizeof(Elf64_Phdr));
        return image;
    }
};

void patch_phdr(std::vector<uint8_t>& image, size_t index, void (*edit)(Elf64_Phdr&)) {
    Elf64_Phdr ph{};
    const size_t offset = sizeof(Elf64_Ehdr) + index * sizeof(Elf64_Phdr);
    std::memcpy(&ph, image.data() + offset, sizeof ph);
    edit(ph);
    std::memcpy(image.data() + offset, &ph, sizeof ph);
}

GuestMemory guest_ram(uint64_t size) { return GuestMemory::create({{Gpa(0), size}}); }

const std::string kNoNote =
    "kernel image 'vmlinux' is an ELF vmlinux without a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); "
    "build it with CONFIG_PVH=y or use the bzImage";

}  // namespace

TEST_CASE("an ELF vmlinux with a PVH note parses", "[elf]") {
    const auto image = ElfBuilder{}.build();
    REQUIRE(detect_kernel_format(image) == KernelFormat::Elf);
    const ElfPvhImage elf = parse_elf_pvh(image, "vmlinux");
    CHECK(elf.pvh_entry == Gpa(kEntry));
    REQUIRE(elf.segments.size() == 2);
    CHECK(elf.segments[0].paddr == Gpa(kTextPaddr));
    CHECK(elf.segments[0].file_size == 0x2000);
    CHECK(elf.segments[0].mem_size == 0x3000);
}

TEST_CASE("the PVH note may carry a 4-byte value and follow other notes", "[elf]") {
    ElfBuilder b;
    b.notes = {{"GNU", 3, le_bytes(0x1234, 20)}, {"Xen", 5, le_bytes(1, 3)},
               {"Xen", kXenElfnotePhys32Entry, le_bytes(kEntry + 4, 4)}};
    CHECK(parse_elf_pvh(b.build(), "vmlinux").pvh_entry == Gpa(kEntry + 4));
}

TEST_CASE("the PVH note is also found through SHT_NOTE sections", "[elf]") {
    ElfBuilder b;
    b.notes_as_section = true;
    CHECK(parse_elf_pvh(b.build(), "vmlinux").pvh_entry == Gpa(kEntry));
}

TEST_CASE("an ELF loads its segments at p_paddr and zeroes the bss", "[elf]") {
    const auto image = ElfBuilder{}.build();
    auto mem = guest_ram(32 * kMiB);
    mem.slice(Gpa(kTextPaddr), 0x3000)->fill(0xff);  // stale bytes must not survive as bss
    const LoadedKernel kernel = load_kernel_image(image, mem, "vmlinux");
    CHECK(kernel.protocol == BootProtocol::Pvh);
    CHECK(kernel.entry == Gpa(kEntry));
    CHECK(kernel.end == Gpa(kTextPaddr + 0x201000));
    CHECK(kernel.initrd_limit == Gpa(0xc0000000));
    CHECK_FALSE(kernel.setup.has_value());
    CHECK(mem.read_obj<uint8_t>(Gpa(kTextPaddr)) == 0x10);
    CHECK(mem.read_obj<uint8_t>(Gpa(kTextPaddr + 0x1fff)) == 0x10);
    CHECK(mem.read_obj<uint8_t>(Gpa(kTextPaddr + 0x2000)) == 0);
    CHECK(mem.read_obj<uint8_t>(Gpa(kTextPaddr + 0x2fff)) == 0);
    CHECK(mem.read_obj<uint8_t>(Gpa(kTextPaddr + 0x200000)) == 0x11);
}

TEST_CASE("an ELF without the PVH note is refused with advice", "[elf]") {
    ElfBuilder b;
    b.notes = {{"GNU", 3, le_bytes(0, 20)}};
    CHECK_THROWS_WITH(parse_elf_pvh(b.build(), "vmlinux"), kNoNote);
    b.notes.clear();
    CHECK_THROWS_WITH(parse_elf_pvh(b.build(), "vmlinux"), kNoNote);
    b.notes = {{"Linux", kXenElfnotePhys32Entry, le_bytes(kEntry, 8)}};  // right type, wrong owner
    CHECK_THROWS_WITH(parse_elf_pvh(b.build(), "vmlinux"), kNoNote);
}

TEST_CASE("hostile ELF segments are refused", "[elf]") {
    const auto refuses = [](const std::vector<uint8_t>& image, const std::string& message) {
        INFO(message);
        CHECK_THROWS_WITH(parse_elf_pvh(image, "vmlinux"), Catch::Contains(message));
    };
    auto image = ElfBuilder{}.build();
    patch_phdr(image, 0, [](Elf64_Phdr& ph) { ph.p_offset = 0x100000; });
    refuses(image, "extends past the end of the file");

    image = ElfBuilder{}.build();
    patch_phdr(image, 0, [](Elf64_Phdr& ph) { ph.p_filesz = ~0ull; ph.p_memsz = ~0ull; });
    refuses(image, "extends past the end of the file");

    image = ElfBuilder{}.build();
    patch_phdr(image, 0, [](Elf64_Phdr& ph) { ph.p_memsz = 0x100; });
    refuses(image, "p_filesz 0x2000 larger than p_memsz 0x100");

    image = ElfBuilder{}.build();
    patch_phdr(image, 1, [](Elf64_Phdr& ph) { ph.p_paddr = ~0ull - 0x10; });
    refuses(image, "wraps the address space");

    ElfBuilder overlapping;
    overlapping.segments = {{kTextPaddr, 0x2000, 0x3000}, {kTextPaddr + 0x2800, 0x100, 0x100}};
    refuses(overlapping.build(), "overlapping PT_LOAD segments at 0x1000000 and 0x1002800");

    ElfBuilder low;
    low.segments = {{0x7000, 0x1000, 0x1000}, {kTextPaddr, 0x1000, 0x1000}};
    refuses(low.build(), "below 1 MiB");

    ElfBuilder outside;
    outside.notes = {{"Xen", kXenElfnotePhys32Entry, le_bytes(kTextPaddr + 0x2800, 4)}};  // in bss
    refuses(outside.build(), "PVH entry point 0x1002800 outside its loadable segments");

    ElfBuilder high;
    high.notes = {{"Xen", kXenElfnotePhys32Entry, le_bytes(0x100000000, 8)}};
    refuses(high.build(), "above 4 GiB");

    ElfBuilder odd;
    odd.notes = {{"Xen", kXenElfnotePhys32Entry, le_bytes(kEntry, 2)}};
    refuses(odd.build(), "2-byte value");

    ElfBuilder none;
    none.segments.clear();
    refuses(none.build(), "without loadable (PT_LOAD) segments");
}

TEST_CASE("malformed notes and headers are refused", "[elf]") {
    // The note claims a name longer than the note area.
    ElfBuilder b;
    auto image = b.build();
    const uint64_t notes_offset = image.size() - b.note_bytes().size();
    const uint32_t huge = 0xfffffff0;
    std::memcpy(image.data() + notes_offset, &huge, sizeof huge);
    CHECK_THROWS_WITH(parse_elf_pvh(image, "vmlinux"), Catch::Contains("malformed ELF note"));

    image = ElfBuilder{}.build();
    patch_phdr(image, 2, [](Elf64_Phdr& ph) { ph.p_offset = ~0ull - 4; });
    CHECK_THROWS_WITH(parse_elf_pvh(image, "vmlinux"), Catch::Contains("PT_NOTE segment outside the file"));

    image = ElfBuilder{}.build();
    Elf64_Ehdr ehdr{};
    std::memcpy(&ehdr, image.data(), sizeof ehdr);
    ehdr.e_phnum = 0xffff;
    std::memcpy(image.data(), &ehdr, sizeof ehdr);
    CHECK_THROWS_WITH(parse_elf_pvh(image, "vmlinux"), Catch::Contains("program header table outside the file"));

    image.resize(40);
    CHECK_THROWS_WITH(parse_elf_pvh(image, "vmlinux"), Catch::Contains("too short for an ELF header"));
}

TEST_CASE("ELFs of the wrong class, byte order, machine or type are refused", "[elf]") {
    ElfBuilder b32;
    b32.elf_class = ELFCLASS32;
    CHECK_THROWS_WITH(parse_elf_pvh(b32.build(), "vmlinux"), Catch::Contains("32-bit ELF"));
    ElfBuilder big;
    big.data = ELFDATA2MSB;
    CHECK_THROWS_WITH(parse_elf_pvh(big.build(), "vmlinux"), Catch::Contains("big-endian"));
    ElfBuilder arm;
    arm.machine = EM_AARCH64;
    CHECK_THROWS_WITH(parse_elf_pvh(arm.build(), "vmlinux"), Catch::Contains("machine 183, not x86_64"));
    ElfBuilder object;
    object.type = ET_REL;
    CHECK_THROWS_WITH(parse_elf_pvh(object.build(), "vmlinux"), Catch::Contains("not an executable"));
}

TEST_CASE("an ELF segment beyond guest RAM is refused at load", "[elf]") {
    auto mem = guest_ram(16 * kMiB);  // the segments start at 16 MiB
    CHECK_THROWS_WITH(load_kernel_image(ElfBuilder{}.build(), mem, "vmlinux"),
                      Catch::Contains("segment at 0x1000000 (12 KiB) that does not fit in guest memory (16 MiB)"));
}

TEST_CASE("a real vmlinux (KEEL_TEST_VMLINUX) has a PVH entry", "[elf]") {
    const char* path = std::getenv("KEEL_TEST_VMLINUX");
    if (path == nullptr || *path == '\0') {
        WARN("SKIPPED: set KEEL_TEST_VMLINUX to an uncompressed vmlinux built with CONFIG_PVH=y "
             "(guest-images/build-minimal-kernel builds one)");
        return;
    }
    const auto image = read_whole_file(path, "kernel image", kMaxKernelImageSize);
    const ElfPvhImage elf = parse_elf_pvh(image, path);
    CHECK(elf.pvh_entry.value >= 0x100000);
    CHECK(elf.pvh_entry.value < 0x100000000);
    auto mem = guest_ram(256 * kMiB);
    CHECK(load_kernel(path, mem).protocol == BootProtocol::Pvh);
}
