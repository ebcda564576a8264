/*
 * Context switch for x86_64 System V.  Only the callee-saved registers and
 * the stack pointer are switched: the caller of urt__ctx_switch has already
 * saved everything else, as for any function call.  No signal mask and no
 * system call, which is what makes it ~10x cheaper than swapcontext.
 * MXCSR and the x87 control word are left alone: they are per thread, and
 * urt does not let a task change them for another.
 */
    .text

/* void urt__ctx_switch(struct urt__ctx *from, struct urt__ctx *to) */
    .globl urt__ctx_switch
    .hidden urt__ctx_switch
    .type urt__ctx_switch, @function
    .p2align 4
urt__ctx_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq (%rsi), %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size urt__ctx_switch, .-urt__ctx_switch

/*
 * A new fiber's first "return" lands here with the entry function in r13 and
 * its argument in r12 (see urt__ctx_init).  The entry never returns: a
 * finished task switches away for good.  rip is marked undefined so that
 * debuggers and unwinders stop at the fiber's base.
 */
    .globl urt__fiber_start
    .hidden urt__fiber_start
    .type urt__fiber_start, @function
    .p2align 4
urt__fiber_start:
    .cfi_startproc
    .cfi_undefined rip
    movq %r12, %rdi
    callq *%r13
    ud2
    .cfi_endproc
    .size urt__fiber_start, .-urt__fiber_start

    .section .note.GNU-stack,"",@progbits
