#pragma once

// The guest's only way to touch hardware: port I/O, MMIO and a few CPU
// instructions. Every pointer below is a guest-physical address, which the
// identity map built in entry.S makes equal to the virtual one.

#include <stddef.h>
#include <stdint.h>

namespace hostile {

inline void outb(uint16_t port, uint8_t value) {
    asm volatile("outb %0, %1" ::"a"(value), "Nd"(port));
}
inline void outw(uint16_t port, uint16_t value) {
    asm volatile("outw %0, %1" ::"a"(value), "Nd"(port));
}
inline void outl(uint16_t port, uint32_t value) {
    asm volatile("outl %0, %1" ::"a"(value), "Nd"(port));
}
inline uint8_t inb(uint16_t port) {
    uint8_t value;
    asm volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}
inline uint16_t inw(uint16_t port) {
    uint16_t value;
    asm volatile("inw %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}
inline uint32_t inl(uint16_t port) {
    uint32_t value;
    asm volatile("inl %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

// MMIO with exactly the access width asked for (volatile, so the compiler
// neither merges nor splits it).
template <class T>
inline T mmio_read(uint64_t address) {
    return *reinterpret_cast<volatile T*>(address);
}
template <class T>
inline void mmio_write(uint64_t address, T value) {
    *reinterpret_cast<volatile T*>(address) = value;
}

inline uint64_t rdtsc() {
    uint32_t low, high;
    asm volatile("rdtsc" : "=a"(low), "=d"(high));
    return (uint64_t{high} << 32) | low;
}
inline void cpu_relax() {
    asm volatile("pause");
}
// Orders the guest's ring writes before the notification that publishes them.
inline void memory_barrier() {
    asm volatile("mfence" ::: "memory");
}

template <class T>
inline T* at(uint64_t gpa) {
    return reinterpret_cast<T*>(gpa);
}
template <class T>
inline uint64_t gpa_of(const T* pointer) {
    return reinterpret_cast<uint64_t>(pointer);
}

}  // namespace hostile

extern "C" {
void* memset(void* destination, int value, size_t size);
void* memcpy(void* destination, const void* source, size_t size);
int memcmp(const void* a, const void* b, size_t size);
}
