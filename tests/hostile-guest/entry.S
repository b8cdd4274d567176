/*
 * The attack guest's first instructions. keel enters through the PVH ABI
 * (docs/guest-abi.md §2.2): 32-bit protected mode, paging off, EBX = the
 * hvm_start_info. This switches to long mode with an identity map of the
 * first 8 GiB (2 MiB pages, so RAM above 4 GiB and the space above it can be
 * named) and calls hostile_main(start_info). It also holds the 256 interrupt
 * stubs, so that a fault inside the guest is reported rather than a silent
 * triple fault.
 */

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define IDENTITY_MAPPED_GIB 8

    .section .note.Xen, "a", @note
    .balign 4
    .long 4                         /* name size: "Xen\0" */
    .long 4                         /* descriptor size */
    .long XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .long pvh_start32

    .section .text.entry, "ax"
    .code32
    .globl pvh_start32
pvh_start32:
    cli
    mov %ebx, %edi
    mov $stack_top, %esp

    /* PML4[0] -> PDPT; PDPT[i] -> page directory i. */
    mov $pdpt, %eax
    or $3, %eax
    mov %eax, pml4
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $12, %eax
    add $page_directories, %eax
    or $3, %eax
    mov %eax, pdpt(, %ecx, 8)
    inc %ecx
    cmp $IDENTITY_MAPPED_GIB, %ecx
    jb 1b

    /* Page directory entry i maps [i * 2 MiB, (i + 1) * 2 MiB): present, writable, large. */
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, page_directories(, %ecx, 8)
    mov %ecx, %eax
    shr $11, %eax
    mov %eax, page_directories + 4(, %ecx, 8)
    inc %ecx
    cmp $(IDENTITY_MAPPED_GIB * 512), %ecx
    jb 2b

    mov $pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x20, %eax                  /* PAE */
    mov %eax, %cr4
    mov $0xC0000080, %ecx           /* EFER */
    rdmsr
    or $0x100, %eax                 /* LME */
    wrmsr
    mov %cr0, %eax
    or $0x80000000, %eax            /* PG */
    mov %eax, %cr0
    lgdt gdt_descriptor
    ljmp $0x08, $start64

    .code64
start64:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov $stack_top, %rsp
    /* The upper half of RDI is undefined after leaving legacy mode. */
    mov %edi, %edi
    call hostile_main
3:  cli
    hlt
    jmp 3b

/*
 * Interrupt stubs, 16 bytes apart: each pushes a zero error code where the
 * CPU pushes none, then the vector, so interrupt_common sees one frame shape.
 */
    .balign 16
    .globl interrupt_stubs
interrupt_stubs:
    .set vector, 0
    .rept 256
    .balign 16
    .if (vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    .else
    pushq $0
    .endif
    pushq $vector
    jmp interrupt_common
    .set vector, vector + 1
    .endr

interrupt_common:
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    mov 72(%rsp), %rdi              /* vector */
    mov 80(%rsp), %rsi              /* error code */
    mov 88(%rsp), %rdx              /* interrupted RIP */
    cld
    call interrupt_dispatch
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    add $16, %rsp
    iretq

    .section .rodata
    .balign 16
gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF        /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF        /* 0x10: data */
gdt_end:
gdt_descriptor:
    .word gdt_end - gdt - 1
    .quad gdt

    .section .bss
    .balign 4096
pml4:
    .skip 4096
pdpt:
    .skip 4096
page_directories:
    .skip 4096 * IDENTITY_MAPPED_GIB
    .balign 16
    .skip 65536
stack_top:

    .section .note.GNU-stack, "", @progbits
