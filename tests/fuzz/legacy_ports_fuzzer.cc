// libFuzzer target: the fuzz bytes are a program of guest accesses, at any
// offset and width, to the small legacy devices a guest can poke: the ACPI
// power-management registers (sleep control, sleep status, reset), the
// Firecracker boot-timer MMIO page and the port 0x80 post-code port. A model
// of each device is kept alongside, so it checks:
//   - AcpiPm asks the VM to stop at most once, with the request the first
//     qualifying byte asked for (SLP_EN with SLP_TYP S5: power off; the reset
//     value at the reset register: reboot), and never otherwise;
//   - WAK_STS is set by an unsupported sleep request, cleared by writing 1,
//     and is the only bit any register reads back;
//   - the boot-mark recorders keep at most their limit of marks, hand the
//     sink exactly that many, and count every qualifying write as recorded
//     or dropped (nothing else counts).
//
// Each step: u8 opcode
//   bits 1:0  device: 0/1 = ACPI PM, 2 = boot timer, 3 = post code
//   bit  2    0 = read, 1 = write (then width bytes of data)
//   bits 4:3  log2(width)
//   bits 7:5  offset (for the boot timer: offset * 0x211, across its page)

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "arch/x86_64/layout.h"
#include "fuzz_input.h"
#include "legacy/acpi_pm.h"
#include "legacy/boot_timer.h"

namespace {

using keel::VmExitRequest;
using keel::fuzz::check;
namespace x86 = keel::x86;

class Lifecycle final : public keel::VmLifecycle {
public:
    void request_exit(VmExitRequest request) override {
        ++exits;
        last = request;
    }
    int exits = 0;
    std::optional<VmExitRequest> last;
};

constexpr uint64_t kSleepStatus = x86::kAcpiSleepStatusPort - x86::kAcpiSleepControlPort;
constexpr uint64_t kReset = x86::kAcpiResetPort - x86::kAcpiSleepControlPort;
constexpr uint8_t kSleepEnable = 0x20;
constexpr uint8_t kWakeStatus = 0x80;

struct AcpiModel {
    uint8_t sleep_status = 0;
    std::optional<VmExitRequest> requested;

    // The device stops at the first byte that asks for an exit.
    void write(uint64_t offset, std::span<const uint8_t> bytes) {
        for (size_t i = 0; i < bytes.size(); ++i) {
            const uint64_t reg = offset + i;
            const uint8_t v = bytes[i];
            if (reg == 0 && (v & kSleepEnable) != 0) {
                if (((v >> 2) & 7) == x86::kAcpiS5SleepType) {
                    request(VmExitRequest::PowerOff);
                    return;
                }
                sleep_status |= kWakeStatus;
            } else if (reg == kSleepStatus) {
                sleep_status &= static_cast<uint8_t>(~(v & kWakeStatus));
            } else if (reg == kReset && v == x86::kAcpiResetValue) {
                request(VmExitRequest::Reboot);
                return;
            }
        }
    }
    void request(VmExitRequest r) {
        if (!requested) requested = r;
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    keel::fuzz::FuzzInput in(std::span(data, size));
    Lifecycle lifecycle;
    keel::AcpiPm pm(lifecycle);
    AcpiModel model;
    uint64_t timer_sink = 0, post_sink = 0, timer_expected = 0, post_expected = 0;
    uint64_t clock = 0;
    keel::BootTimerMmio timer(
        [&](const keel::BootMark& m) {
            check(m.source == keel::BootMarkSource::Mmio && m.code == x86::kBootTimerMagic);
            ++timer_sink;
        },
        [&] { return ++clock; });
    keel::PostCodePort post(
        [&](const keel::BootMark& m) {
            check(m.source == keel::BootMarkSource::PostCode);
            ++post_sink;
        },
        [&] { return ++clock; });

    for (int steps = 0; !in.empty() && steps < 4096; ++steps) {
        const uint8_t op = in.u8();
        const size_t width = size_t{1} << ((op >> 3) & 3);
        const uint64_t slot = op >> 5;
        const bool write = (op & 4) != 0;
        std::array<uint8_t, 8> buf{};
        buf.fill(0xcc);
        const std::span<uint8_t> bytes(buf.data(), width);
        if (write) {
            for (auto& b : bytes) b = in.u8();
        }
        switch (op & 3) {
            case 0:
            case 1: {
                const uint64_t offset = slot % 4;  // 3 is past the last register
                if (write) {
                    pm.write(offset, bytes);
                    model.write(offset, bytes);
                } else {
                    pm.read(offset, bytes);
                    for (size_t i = 0; i < width; ++i) {
                        check(bytes[i] == (offset + i == kSleepStatus ? model.sleep_status : 0));
                    }
                }
                break;
            }
            case 2: {
                const uint64_t offset = slot * 0x211 % x86::kBootTimerMmioSize;
                if (write) {
                    timer.write(offset, bytes);
                    if (offset == 0 && width == 1 && bytes[0] == x86::kBootTimerMagic) ++timer_expected;
                } else {
                    timer.read(offset, bytes);
                    for (const uint8_t b : bytes) check(b == 0);
                }
                break;
            }
            default: {
                const uint64_t offset = slot % 2;
                if (write) {
                    post.write(offset, bytes);
                    if (offset == 0) ++post_expected;
                } else {
                    post.read(offset, bytes);
                    for (const uint8_t b : bytes) check(b == 0);
                }
                break;
            }
        }
        check(lifecycle.exits == (model.requested ? 1 : 0));
        if (model.requested) check(lifecycle.last == model.requested);
        check(timer.marks().recorded() <= keel::BootTimerMmio::kMaxMarks);
        check(timer.marks().recorded() == timer_sink);
        check(timer.marks().recorded() + timer.marks().dropped() == timer_expected);
        check(post.marks().recorded() <= keel::PostCodePort::kMaxMarks);
        check(post.marks().recorded() == post_sink);
        check(post.marks().recorded() + post.marks().dropped() == post_expected);
    }
    return 0;
}
