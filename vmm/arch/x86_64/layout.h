#pragma once

// The x86_64 guest-physical memory map and fixed resources keel presents.
// docs/guest-abi.md describes the same map for guest authors; keep both true.

#include <cstdint>

#include "memory/gpa.h"

namespace keel::x86 {

// --- Low memory: boot structures keel writes before the first instruction ---
inline constexpr Gpa kGdtStart{0x500};           // 4 entries used by the 64-bit boot GDT
inline constexpr Gpa kIdtStart{0x520};           // empty IDT (limit 0): the kernel sets its own
inline constexpr Gpa kPvhStartInfo{0x6000};      // struct hvm_start_info (PVH boot)
inline constexpr Gpa kPvhMemmap{0x6040};         // hvm_memmap_table_entry[] follows it
inline constexpr Gpa kPvhModlist{0x6fe0};        // hvm_modlist_entry (the initrd); caps the memmap at 166 entries
inline constexpr Gpa kZeroPage{0x7000};          // struct boot_params (bzImage boot)
inline constexpr Gpa kBootStackTop{0x8ff0};      // initial RSP/RBP
inline constexpr Gpa kPml4{0x9000};              // identity page tables for the first 4 GiB
inline constexpr Gpa kPdpt{0xa000};
inline constexpr Gpa kPd{0xb000};                // 4 pages: 4 x 512 x 2 MiB = 4 GiB
inline constexpr Gpa kCmdline{0x20000};
inline constexpr uint64_t kCmdlineMax = 0x10000; // including the terminating NUL
inline constexpr Gpa kEbdaStart{0x9fc00};        // MP floating pointer (its table: kMpConfigTableStart)
inline constexpr Gpa kBiosAreaStart{0xe0000};    // ACPI tables (RSDP first) — e820 reserved
inline constexpr uint64_t kBiosAreaSize = 0x20000;
inline constexpr uint64_t kAcpiTablesMaxSize = 0x10000;  // ACPI tables get [0xe0000, 0xf0000)
// The MP configuration table: at 254 vCPUs it is ~5 KiB, too big for the 1 KiB EBDA that
// holds its floating pointer (which is all Linux scans for), so it lives in the BIOS area.
inline constexpr Gpa kMpConfigTableStart{0xf0000};
inline constexpr Gpa kHighMemStart{0x100000};    // 1 MiB: protected-mode kernel load address

// --- The 32-bit MMIO hole: [3 GiB, 4 GiB) is never RAM ---
inline constexpr Gpa kMmioHoleStart{0xc000'0000};
inline constexpr uint64_t kMmioHoleSize = 0x4000'0000;
inline constexpr Gpa kMemAbove4gStart{0x1'0000'0000};

// Boot-timer device, compatible with Firecracker's (one byte, value 123 = "userspace
// started"); guest images written for Firecracker work unchanged. Firecracker's
// x86_64 layout put it at the start of its MMIO window: 0xc0000000 in its current
// layout (a 1 GiB 32-bit MMIO window), 0xd0000000 in releases before that, which
// older guest images still write to — keel answers at both.
inline constexpr Gpa kBootTimerMmio{0xc000'0000};
inline constexpr Gpa kBootTimerLegacyMmio{0xd000'0000};
inline constexpr uint64_t kBootTimerMmioSize = 0x1000;
inline constexpr uint8_t kBootTimerMagic = 123;
// 32-bit PCI memory window: every BAR is assigned here at setup (and never moves). The PCI0
// host bridge's _CRS describes exactly this range, so Linux keeps the assigned BARs.
inline constexpr Gpa kPciMmioWindowStart{0xc100'0000};
inline constexpr uint64_t kPciMmioWindowSize = 0x0f00'0000;  // up to 0xd000'0000
// virtio-mmio devices are placed from here, one 4 KiB window each (issue 3).
inline constexpr Gpa kVirtioMmioStart{0xd000'1000};
inline constexpr uint64_t kVirtioMmioStride = 0x1000;
// PCI ECAM (issue 3): 256 buses x 32 devices x 8 functions x 4 KiB reserved here. keel has
// bus 0 only, so the MCFG table, the ECAM device and the PNP0C02 reservation cover its 1 MiB.
inline constexpr Gpa kPciEcamStart{0xe000'0000};
inline constexpr uint64_t kPciEcamSize = 0x1000'0000;
inline constexpr uint8_t kPciBusCount = 1;
inline constexpr uint64_t kPciEcamBusSize = 0x10'0000;  // 32 devices x 8 functions x 4 KiB
inline constexpr uint64_t kPciEcamUsedSize = kPciBusCount * kPciEcamBusSize;
inline constexpr Gpa kIoapicStart{0xfec0'0000};
inline constexpr uint8_t kIoapicId = 0;           // KVM's in-kernel IOAPIC resets its ID register to 0
inline constexpr Gpa kLapicStart{0xfee0'0000};
// KVM_SET_TSS_ADDR needs three pages, KVM_SET_IDENTITY_MAP_ADDR one, below 4 GiB
// and outside RAM.
inline constexpr Gpa kKvmIdentityMap{0xfffb'c000};
inline constexpr Gpa kKvmTss{0xfffb'd000};

// --- I/O ports ---
inline constexpr uint16_t kSerialCom1Port = 0x3f8;
inline constexpr uint16_t kSerialPortCount = 8;
inline constexpr uint16_t kI8042DataPort = 0x60;
inline constexpr uint16_t kI8042CommandPort = 0x64;
inline constexpr uint16_t kPostCodePort = 0x80;    // Cloud Hypervisor-style boot-timer codes
// PCI configuration mechanism #1: CONFIG_ADDRESS at 0xcf8, CONFIG_DATA at 0xcfc-0xcff.
inline constexpr uint16_t kPciConfigAddressPort = 0xcf8;
inline constexpr uint16_t kPciConfigDataPort = 0xcfc;
inline constexpr uint16_t kPciConfigPortCount = 8;
// ACPI hardware-reduced sleep control/status and reset registers (FADT points here).
inline constexpr uint16_t kAcpiSleepControlPort = 0x600;
inline constexpr uint16_t kAcpiSleepStatusPort = 0x601;
inline constexpr uint16_t kAcpiResetPort = 0x602;
inline constexpr uint8_t kAcpiResetValue = 0x1;
// SLP_TYP for S5 (soft off): the DSDT's \_S5_ package holds it, and a sleep-control write of
// SLP_EN | SLP_TYP=this powers the VM off (ACPI 6.4 §4.8.3.7, §7.4.2).
inline constexpr uint8_t kAcpiS5SleepType = 5;

// --- Interrupts (IOAPIC pins == GSIs) ---
inline constexpr uint32_t kIoapicPins = 24;
inline constexpr uint32_t kI8042KeyboardIrq = 1;
inline constexpr uint32_t kSerialCom1Irq = 4;
// The PIT (ISA IRQ 0) arrives at GSI 0, not the PC's usual 2: KVM_CREATE_IRQCHIP installs a
// routing of GSI n -> IOAPIC pin n (and 8259 pin n for n < 16), and KVM's PIT raises GSI 0.
// The MADT's IRQ0 override and the MP table describe this value; moving the PIT to pin 2
// needs a KVM_SET_GSI_ROUTING table that does the same.
inline constexpr uint32_t kPitGsi = 0;
inline constexpr uint32_t kFirstDeviceIrq = 5;  // virtio devices take GSIs from here, skipping the above

// Largest vCPU count keel supports (APIC IDs must fit the xAPIC's 8 bits and the MADT).
inline constexpr uint32_t kMaxVcpus = 254;

}  // namespace keel::x86
