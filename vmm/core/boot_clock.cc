#include "core/boot_clock.h"

namespace keel {

namespace {
const uint64_t g_process_start_ns = monotonic_ns();
}  // namespace

uint64_t process_start_ns() { return g_process_start_ns; }

}  // namespace keel
