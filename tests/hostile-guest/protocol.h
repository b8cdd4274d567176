#pragma once

// What the attack guest and the test that boots it agree on: the console
// lines, the disk's content and the network addresses. Included by both the
// freestanding guest and tests/integration/hostile_guest_test.cc, so it holds
// nothing but constants.

namespace keel::hostile {

// Every line the guest prints for the test starts with this.
inline constexpr char kLinePrefix[] = "KEEL-ATTACK ";
// One line per attack:
//   KEEL-ATTACK result <transport> <device> <attack> outcome=<what the device did>
//       recovered=<yes|no> <PASS|FAIL>
// then, once every attack ran:
//   KEEL-ATTACK idle begin     (the guest halts until a byte arrives on the console)
//   KEEL-ATTACK idle end
//   KEEL-ATTACK summary attacks=<n> failed=<n>
// and the guest powers the VM off through ACPI S5.

// The disk the test gives the guest: sector n begins with this text followed
// by n as 8 hexadecimal digits; the guest writes kScratchSector and reads it back.
inline constexpr char kDiskSectorMagic[] = "KEEL-HOSTILE-DISK ";
inline constexpr unsigned kDiskSectors = 2048;  // 1 MiB
inline constexpr unsigned kScratchSector = 7;

// The guest's NIC talks ARP to the host's end of the TAP (link-local only).
inline constexpr unsigned char kGuestIp[4] = {169, 254, 77, 2};
inline constexpr unsigned char kHostIp[4] = {169, 254, 77, 1};

// While the guest idles the test watches keel's threads for this long, then
// sends a byte on the console to end the idle. (The test's clock, not the
// guest's: in the emulated sandbox a halted guest's clock runs many times
// faster than the host's.)
inline constexpr unsigned kIdleMilliseconds = 2500;

}  // namespace keel::hostile
