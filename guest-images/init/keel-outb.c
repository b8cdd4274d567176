/*
 * keel-outb PORT VALUE — write one byte to an x86 I/O port from userspace.
 *
 * Why this exists: the test init marks "userspace started" on I/O port 0x80
 * (Cloud Hypervisor's debug port). The minimal kernel has /dev/port, but
 * Debian's stock kernels are built without it (CONFIG_DEVPORT is off) and
 * busybox has no outb applet; ioperm(2) + outb works on any kernel with
 * CONFIG_X86_IOPL_IOPERM (Debian's have it).
 *
 * Freestanding (no libc): a few-KiB static binary that build-stock-guest compiles
 * on the host. Numbers are decimal or 0x-prefixed hex. Exit status: 0 written,
 * 1 bad usage, 2 ioperm refused.
 */
#define SYS_write 1
#define SYS_ioperm 173
#define SYS_exit_group 231

static long syscall3(long nr, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
}

static __attribute__((noreturn)) void leave(int status, const char *msg)
{
    if (msg) {
        unsigned long len = 0;
        while (msg[len])
            len++;
        syscall3(SYS_write, 2, (long)msg, (long)len);
    }
    syscall3(SYS_exit_group, status, 0, 0);
    __builtin_unreachable();
}

/* Returns 0 and stores the value, or -1 if s is not a number below limit. */
static int parse_number(const char *s, unsigned long limit, unsigned long *out)
{
    unsigned long base = 10, value = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    if (!*s)
        return -1;
    for (; *s; s++) {
        unsigned long digit;
        if (*s >= '0' && *s <= '9')
            digit = (unsigned long)(*s - '0');
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            digit = (unsigned long)(*s - 'a' + 10);
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            digit = (unsigned long)(*s - 'A' + 10);
        else
            return -1;
        value = value * base + digit;
        if (value > limit)
            return -1;
    }
    *out = value;
    return 0;
}

__attribute__((noreturn, used)) void keel_outb_main(long *stack)
{
    long argc = stack[0];
    char **argv = (char **)(stack + 1);
    unsigned long port, value;

    if (argc != 3 || parse_number(argv[1], 0xffff, &port) ||
        parse_number(argv[2], 0xff, &value))
        leave(1, "usage: keel-outb PORT VALUE\n");
    if (syscall3(SYS_ioperm, (long)port, 1, 1) < 0)
        leave(2, "keel-outb: ioperm refused\n");
    __asm__ volatile("outb %b0, %w1" : : "a"(value), "Nd"(port));
    leave(0, 0);
}

/* The kernel enters with argc at (%rsp); align the stack for the C call. */
__asm__(".globl _start\n"
        "_start:\n"
        "  xor %ebp, %ebp\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call keel_outb_main\n"
        "  hlt\n");
