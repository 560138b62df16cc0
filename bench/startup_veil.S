/*
 * The smallest veil firmware: the vCPU starts here in 64-bit mode, writes one byte to the
 * UART (COM1) and status 0 to the debug-exit port, which ends the VM.  bench/startup's
 * guest for veil.
 */
	.section .text.entry, "ax"
	.code64
	.globl _start
_start:
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
