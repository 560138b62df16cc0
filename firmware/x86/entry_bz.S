/* linuxboot's protected-mode image: offset 0 is the 32-bit entry, offset 0x200 the 64-bit one. */
	.section .head.text, "ax"
	.code32
	.globl startup_32
startup_32:
	/* veil enters at startup_64 only; a loader that uses the 32-bit entry faults here on purpose. */
	ud2

	/* Boot protocol 2.12+: the 64-bit entry is 0x200 past the start of the image. */
	.code64
	.org 0x200, 0xcc
	.globl startup_64
startup_64:
	/*
	 * RSI = boot_params; the protocol gives no stack (veil passes RSP = 0),
	 * so clear our bss (init_size covers it, the file does not) and use the
	 * stack inside it.  Nothing is pushed before RSP is set.
	 */
	cld
	movq	%rsi, %rbx
	movl	$__bss_start, %edi
	movl	$__bss_end, %ecx
	subl	%edi, %ecx
	xorl	%eax, %eax
	rep stosb
	movq	$boot_stack_top, %rsp
	movq	%rbx, %rdi
	call	linuxboot_main
1:	cli
	hlt
	jmp	1b

	.section .bss.stack, "aw", @nobits
	.balign 16
	.skip 16384
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
