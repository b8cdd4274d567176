/* Usage: kvm-probe [SECONDS]
 * Does this /dev/kvm run guest code at hardware speed? A host can have a /dev/kvm that opens,
 * creates VMs and vCPUs, and still runs a guest thousands of times too slowly to boot one (seen
 * here: a nested /dev/kvm without virtualization extensions in /proc/cpuinfo took over 120 s
 * to not finish decompressing a kernel). This runs 16M iterations of a real-mode loop ending
 * in an OUT to port 0x10: hardware does that in ~20 ms, the KVM sandbox's emulated L1 well
 * under a second. Exit 0 when it finished within SECONDS (default 5), 1 when not, 2 when
 * /dev/kvm cannot even create a vCPU. scripts/kvm-sandbox builds and runs it (cached). */
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static void on_alarm(int sig) { (void)sig; }

int main(int argc, char **argv) {
    double limit = argc > 1 ? atof(argv[1]) : 5.0;
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) { perror("open /dev/kvm"); return 2; }
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) { perror("KVM_CREATE_VM"); return 2; }
    size_t size = 0x10000;
    unsigned char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    /* mov ecx, 0x1000000; l: dec ecx; jnz l; out 0x10, al; hlt */
    const unsigned char code[] = {0x66, 0xb9, 0x00, 0x00, 0x00, 0x01, 0x66, 0x49, 0x75, 0xfc, 0xe6, 0x10, 0xf4};
    memcpy(mem + 0x1000, code, sizeof code);
    struct kvm_userspace_memory_region region = {.slot = 0, .guest_phys_addr = 0, .memory_size = size,
                                                 .userspace_addr = (unsigned long)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) { perror("KVM_SET_USER_MEMORY_REGION"); return 2; }
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) { perror("KVM_CREATE_VCPU"); return 2; }
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    struct kvm_sregs sregs;
    ioctl(vcpu, KVM_GET_SREGS, &sregs);
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    ioctl(vcpu, KVM_SET_SREGS, &sregs);
    struct kvm_regs regs = {.rip = 0x1000, .rflags = 2};
    ioctl(vcpu, KVM_SET_REGS, &regs);
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    alarm((unsigned)limit + 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int r = ioctl(vcpu, KVM_RUN, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (r < 0 || run->exit_reason != KVM_EXIT_IO || run->io.port != 0x10) {
        printf("kvm-probe: the guest loop did not finish (KVM_RUN %d, exit reason %u) within %.1f s\n", r,
               run->exit_reason, seconds);
        return 1;
    }
    printf("kvm-probe: 16M guest loop iterations in %.3f s\n", seconds);
    return seconds <= limit ? 0 : 1;
}
