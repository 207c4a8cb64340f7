#!/usr/bin/env bash
# Signals under the preload: a blocking call that a handler interrupts
# returns EINTR, or is restarted for a handler with SA_RESTART, exactly as
# the kernel's call would (runtime/usmc_signal.c, docs/runtime.md).
# preload_peer's "signals" case interrupts accept, recv (sigaction with and
# without SA_RESTART, signal(), siginterrupt(), SO_RCVTIMEO, SA_SIGINFO,
# sysv_signal, glibc's __sigaction past the interposer), poll, and a send
# blocked on a full window (partial count, every byte checked).
# The case runs first without usmc-run, so its expectations are proved to
# be the kernel's, then over SMC-R in the lab and on one host.
# Each signal is sent once the server is asleep in the call under test
# (its /proc syscall file), never at a fixed time, and the client acts
# only once the handler has run: a 'G' on the socket, or the files
# $go.connect and $go.send that the server creates (ARG of both sides).
. "$(dirname "$0")/lib_preload.sh"
t_need_cmd timeout ss
t_lab_up
fails=0
go=$t_work/go
t_pair lab 7301 signals "$go-7301" "$go-7301" plain plain || fails=$((fails + 1))
want="smcr=1 fallback=0 failed=0"
t_pair lab 7302 signals "$go-7302" "$go-7302" "$want" "$want" || fails=$((fails + 1))
t_pair local 7303 signals "$go-7303" "$go-7303" "$want" "$want" || fails=$((fails + 1))
[ $fails = 0 ] || t_fail "$fails run(s) failed"
t_log PASS
