/*
 * The AP trampoline: copied by the BSP to TRAMPOLINE_GPA and entered by SIPI in
 * real mode at CS = TRAMPOLINE_GPA >> 4, IP = 0.  It goes through protected
 * mode to long mode on the BSP's page tables (ap_boot.cr3), claims an index
 * and a stack, and calls ap_boot.entry(index).  The code runs from the copy,
 * so every jump target and the GDT's address are computed for TRAMPOLINE_GPA;
 * ap_boot (linuxboot.c) is reached by absolute address, mapped in both modes.
 */
/* Between boot_params (0x7000) and veil's page tables (0x10000); linuxboot.c checks it is free. */
#define TRAMPOLINE_GPA 0x8000
#define TR(label) (TRAMPOLINE_GPA + (label) - trampoline_start)

/* struct ap_boot in linuxboot.c. */
#define AP_CR3 (ap_boot + 0)
#define AP_NEXT (ap_boot + 4)
#define AP_MAX (ap_boot + 8)
#define AP_STACK_SIZE (ap_boot + 12)
#define AP_STACKS (ap_boot + 16)
#define AP_ENTRY (ap_boot + 24)

	.section .rodata
	.globl trampoline_gpa
	.balign 8
trampoline_gpa:
	.quad TRAMPOLINE_GPA

	.section .text.trampoline, "ax"
	.globl trampoline_start, trampoline_end
	.code16
trampoline_start:
	cli
	cld
	movw	%cs, %ax
	movw	%ax, %ds
	lgdtl	tr_gdt_desc - trampoline_start
	movl	%cr0, %eax
	orl	$0x1, %eax		/* PE */
	movl	%eax, %cr0
	ljmpl	$0x08, $TR(tr_pm32)

	.code32
tr_pm32:
	movl	$0x10, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%cr4, %eax
	orl	$0x20, %eax		/* PAE */
	movl	%eax, %cr4
	movl	AP_CR3, %eax
	movl	%eax, %cr3
	movl	$0xc0000080, %ecx	/* EFER.LME */
	rdmsr
	orl	$0x100, %eax
	wrmsr
	movl	%cr0, %eax
	andl	$0x9fffffff, %eax	/* caches on: SIPI leaves CD and NW set */
	orl	$0x80010020, %eax	/* PG, WP, NE */
	movl	%eax, %cr0
	ljmpl	$0x18, $TR(tr_lm64)

	.code64
tr_lm64:
	movl	$1, %eax
	lock xaddl %eax, AP_NEXT
	cmpl	AP_MAX, %eax
	jae	tr_halt
	movl	%eax, %edi
	leal	1(%rax), %ecx
	movl	AP_STACK_SIZE, %edx
	imulq	%rdx, %rcx
	addq	AP_STACKS, %rcx
	movq	%rcx, %rsp
	movq	AP_ENTRY, %rax
	call	*%rax
tr_halt:
	cli
	hlt
	jmp	tr_halt

	.balign 8
tr_gdt:
	.quad	0
	.quad	0x00cf9b000000ffff	/* 0x08: 32-bit code */
	.quad	0x00cf93000000ffff	/* 0x10: data */
	.quad	0x00af9b000000ffff	/* 0x18: 64-bit code */
tr_gdt_end:
tr_gdt_desc:
	.word	tr_gdt_end - tr_gdt - 1
	.long	TR(tr_gdt)
trampoline_end:

	.section .note.GNU-stack, "", @progbits
