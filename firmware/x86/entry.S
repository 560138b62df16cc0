/* Firmware entry: veil has set rdi = vCPU index, rsi = boot info, rsp = this vCPU's stack. */
	.section .text.entry, "ax"
	.code64
	.globl _start
_start:
	cld
	call	fw_main
1:	cli
	hlt
	jmp	1b
	.section .note.GNU-stack, "", @progbits
