/*
 * The smallest PVH guest: QEMU enters it in 32-bit protected mode (paging off) at the
 * address the Xen PHYS32_ENTRY note gives.  Like bench/startup's veil firmware, it writes one
 * byte to COM1 and 0 to a debug-exit device at port 0x501; QEMU then exits with (0 << 1) | 1.
 */
	.section .note.Xen, "a", @note
	.p2align 2
	.long	4		/* name size: "Xen\0" */
	.long	4		/* descriptor size */
	.long	18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz	"Xen"
	.long	pvh_start

	.text
	.code32
	.globl	pvh_start
pvh_start:
	movb	$'!', %al		/* one byte on the UART (COM1): the runner times its arrival */
	movw	$0x3f8, %dx
	outb	%al, %dx
	xorl	%eax, %eax
	movw	$0x501, %dx
	outl	%eax, %dx
1:	cli
	hlt
	jmp	1b
	.section .note.GNU-stack, "", @progbits
