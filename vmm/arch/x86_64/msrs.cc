#include "arch/x86_64/msrs.h"

#include <asm/mtrr.h>

namespace keel::x86 {
namespace {

kvm_msr_entry msr(uint32_t index, uint64_t data) {
    kvm_msr_entry entry{};
    entry.index = index;
    entry.data = data;
    return entry;
}

}  // namespace

std::vector<kvm_msr_entry> boot_msr_entries() {
    return {
        msr(kMsrIa32SysenterCs, 0),
        msr(kMsrIa32SysenterEsp, 0),
        msr(kMsrIa32SysenterEip, 0),
        msr(kMsrStar, 0),
        msr(kMsrLstar, 0),
        msr(kMsrCstar, 0),
        msr(kMsrSyscallMask, 0),
        msr(kMsrKernelGsBase, 0),
        msr(kMsrIa32MiscEnable,
            kMiscEnableFastString | kMiscEnableBtsUnavailable | kMiscEnablePebsUnavailable),
        msr(kMsrMtrrDefType, kMtrrDefTypeEnable | MTRR_TYPE_WRBACK),
    };
}

}  // namespace keel::x86
