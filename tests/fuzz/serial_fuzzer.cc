// libFuzzer target: the fuzz bytes are a program of guest register accesses
// and host input against one 16550A. It checks that no sequence crashes the
// device, grows it past its bounds, or loses count of its output.
//
// Each step starts with an opcode byte:
//   bits 2:0  register offset (0-7)
//   bits 4:3  0 = read, 1 = write the next byte, 2 = host input of the next
//             (byte & 0x7f) bytes, 3 = wide access (see bits 7:5)
//   bits 7:5  wide access: width 1 << (bits 6:5), bit 7 = write; may run past
//             the last register, which the device must tolerate

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>

#include "fuzz_input.h"
#include "legacy/serial.h"

namespace {

class CountingIrq final : public keel::InterruptLine {
public:
    void trigger() override { ++count; }
    uint64_t count = 0;
};

using keel::fuzz::check;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> input(data, size);
    auto irq = std::make_shared<CountingIrq>();
    uint64_t output_bytes = 0;
    keel::Serial serial(irq, [&](std::span<const uint8_t> bytes) { output_bytes += bytes.size(); });
    uint64_t room_calls = 0;
    uint64_t refusals = 0;
    serial.set_rx_room_callback([&] { ++room_calls; });

    size_t pos = 0;
    while (pos < input.size()) {
        const uint8_t op = input[pos++];
        const uint8_t offset = op & 0x07;
        switch ((op >> 3) & 0x03) {
            case 0: {
                std::array<uint8_t, 1> byte{};
                serial.read(offset, byte);
                break;
            }
            case 1: {
                if (pos >= input.size()) break;
                serial.write(offset, input.subspan(pos, 1));
                ++pos;
                break;
            }
            case 2: {
                if (pos >= input.size()) break;
                const size_t wanted = input[pos++] & 0x7f;
                const size_t len = wanted < input.size() - pos ? wanted : input.size() - pos;
                const size_t space = serial.rx_space();
                const size_t taken = serial.enqueue_input(input.subspan(pos, len));
                check(taken == (len < space ? len : space));
                if (taken < len) ++refusals;
                pos += len;
                break;
            }
            default: {
                const size_t width = size_t{1} << ((op >> 5) & 0x03);
                std::array<uint8_t, 8> buf{};
                if (op & 0x80) {
                    for (size_t i = 0; i < width && pos < input.size(); ++i) buf[i] = input[pos++];
                    serial.write(offset, std::span<const uint8_t>(buf.data(), width));
                } else {
                    serial.read(offset, std::span<uint8_t>(buf.data(), width));
                }
                break;
            }
        }
        check(serial.rx_space() <= keel::Serial::kRxFifoCapacity);
        check(room_calls <= refusals);  // one wake-up per refusal at most
    }
    check(serial.stats().bytes_out == output_bytes);
    return 0;
}
