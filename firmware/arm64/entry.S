/*
 * Firmware entry (veil_boot.h): vCPU 0 with x0 = 0, x1 = boot info, x2 = its stack top; the
 * others through PSCI CPU_ON with x0 = their index, their stacks VEIL_FW_STACK_SIZE apart below
 * vCPU 0's.  Each turns the MMU on with veil's identity map (so exclusives, atomics and
 * unaligned accesses work) before any C runs; vCPU 0 then starts the others.
 */
#include "veil_boot.h"

#define SCTLR_M (1 << 0)
#define SCTLR_A (1 << 1)
#define SCTLR_C (1 << 2)
#define SCTLR_I (1 << 12)
/* T0SZ 25 (39-bit VA, walks from level 1), inner/outer write-back, inner shareable, 4 KiB
 * granule, no TTBR1 walks; IPS from ID_AA64MMFR0_EL1.PARange. */
#define TCR_BASE (25 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23))

	.section .text.entry, "ax"
	.globl _start
_start:
	/* Written with the MMU off, read by the others with theirs off: no cache in between. */
	adrp	x9, fw_boot_info
	add	x9, x9, :lo12:fw_boot_info
	str	x1, [x9]
	adrp	x9, fw_stacks_end
	add	x9, x9, :lo12:fw_stacks_end
	str	x2, [x9]
	mov	sp, x2
	mov	x20, x1
	bl	mmu_on
	mov	x0, x20
	bl	fw_arm64_boot
	b	halt

	.globl fw_secondary_entry
fw_secondary_entry:
	mov	x19, x0
	adrp	x9, fw_stacks_end
	add	x9, x9, :lo12:fw_stacks_end
	ldr	x10, [x9]
	mov	x11, #VEIL_FW_STACK_SIZE
	msub	x10, x11, x19, x10
	mov	sp, x10
	adrp	x9, fw_boot_info
	add	x9, x9, :lo12:fw_boot_info
	ldr	x20, [x9]
	bl	mmu_on
	mov	x0, x19
	mov	x1, x20
	bl	fw_main
halt:
	msr	daifset, #0xf
	wfi
	b	halt

mmu_on:
	adrp	x9, fw_vectors
	add	x9, x9, :lo12:fw_vectors
	msr	vbar_el1, x9
	mov	x9, #(3 << 20) /* CPACR_EL1.FPEN: FP/SIMD not trapped */
	msr	cpacr_el1, x9
	ldr	x9, =VEIL_FW_MAIR
	msr	mair_el1, x9
	mrs	x10, id_aa64mmfr0_el1
	and	x10, x10, #0xf
	mov	x11, #5 /* 48 bits at most: 52 needs LPA2 descriptors */
	cmp	x10, x11
	csel	x10, x10, x11, ls
	ldr	x9, =TCR_BASE
	orr	x9, x9, x10, lsl #32
	msr	tcr_el1, x9
	ldr	x9, =VEIL_FW_PGTABLE_GPA
	msr	ttbr0_el1, x9
	isb
	tlbi	vmalle1
	dsb	nsh
	isb
	mrs	x9, sctlr_el1
	mov	x10, #(SCTLR_M | SCTLR_C | SCTLR_I)
	orr	x9, x9, x10
	bic	x9, x9, #SCTLR_A
	msr	sctlr_el1, x9
	isb
	ret
	.ltorg

/* Every exception ends in fw_arm64_trap(vector, ESR, ELR, FAR). */
	.macro	vector n
	.balign	0x80
	mov	x0, #\n
	b	trap
	.endm
	.balign	0x800
fw_vectors:
	.irp	n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	vector	\n
	.endr
trap:
	mrs	x1, esr_el1
	mrs	x2, elr_el1
	mrs	x3, far_el1
	bl	fw_arm64_trap
	b	halt

	.data
	.balign	8
fw_boot_info:
	.quad	0
fw_stacks_end:
	.quad	0
	.section .note.GNU-stack, "", %progbits
