#pragma once

// Every keel file includes the KVM UAPI through this header, never
// <linux/kvm.h> directly.
//
// Why: in the Linux 6.1 UAPI headers Debian 12 ships, __DECLARE_FLEX_ARRAY
// wraps flexible arrays in a struct holding an empty struct — size 0 in C,
// size 1 in C++. Under C++ that moves kvm_cpuid2::entries and kvm_msrs::entries
// and even changes the ioctl numbers that encode the struct size
// (KVM_GET_SUPPORTED_CPUID becomes 0xc00cae05 instead of 0xc008ae05, and KVM
// answers EINVAL). Linux fixed the macro for C++ upstream ("uapi: stddef.h:
// Fix __DECLARE_FLEX_ARRAY for C++", Linux 6.6) with exactly this definition;
// we apply that fix before the KVM headers expand it. The static_asserts
// below fail the build should any header disagree with the kernel's layout.
#include <linux/stddef.h>
#undef __DECLARE_FLEX_ARRAY
#define __DECLARE_FLEX_ARRAY(TYPE, NAME) TYPE NAME[0]

// A zero-length array is a GNU extension, as in the kernel's own fix.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <linux/kvm.h>
#pragma GCC diagnostic pop

#include <cstddef>

static_assert(sizeof(kvm_cpuid2) == 8 && offsetof(kvm_cpuid2, entries) == 8);
static_assert(sizeof(kvm_msrs) == 8 && offsetof(kvm_msrs, entries) == 8);
static_assert(sizeof(kvm_msr_list) == 4 && offsetof(kvm_msr_list, indices) == 4);
static_assert(sizeof(kvm_irq_routing) == 8 && offsetof(kvm_irq_routing, entries) == 8);
static_assert(KVM_GET_SUPPORTED_CPUID == 0xc008ae05);
static_assert(KVM_SET_CPUID2 == 0x4008ae90);
static_assert(KVM_SET_MSRS == 0x4008ae89);
