/* SPDX-License-Identifier: MIT */
/*
 * vfork for the preload on x86-64 (docs/preload.md, "fork"). The child of
 * vfork runs on the caller's stack until it execs or exits; a C wrapper
 * around libc's vfork would have the child return through, and clobber,
 * the frame the parent then returns through. So this stub calls
 * usmc_vfork_prepare (it marks the thread, returns libc's vfork) with a
 * balanced call, then jumps to libc's vfork, the stack exactly as the
 * caller left it: libc's vfork returns straight to the caller, twice.
 */
	.text
	.globl	vfork
	.type	vfork, @function
	.globl	__vfork
	.type	__vfork, @function
	.p2align 4
vfork:
__vfork:
	.cfi_startproc
#ifdef __CET__
	endbr64
#endif
	/* 16-byte alignment for the call; vfork has no arguments to keep */
	subq	$8, %rsp
	.cfi_adjust_cfa_offset 8
	call	usmc_vfork_prepare
	addq	$8, %rsp
	.cfi_adjust_cfa_offset -8
	jmp	*%rax
	.cfi_endproc
	.size	vfork, .-vfork
	.size	__vfork, .-__vfork

	.section .note.GNU-stack, "", @progbits
