/*
 * Running a VM as a CLI command does, through veil.h alone: the stop
 * signals (INT, TERM, HUP, QUIT) stop it with 128 + N from a signalfd, and
 * stay blocked until the caller's report is out.
 */
#ifndef VEIL_STRESS_VM_H
#define VEIL_STRESS_VM_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "veil.h"

/*
 * Blocks the stop signals in the calling thread (old: the mask before) and
 * sets their dispositions to default, so that only a signalfd takes them.
 */
void stress_vm_signals_block(sigset_t *old);
/* Consumes stop signals still pending (the same interruption), then restores old. */
void stress_vm_signals_restore(const sigset_t *old);

/*
 * Starts vm (installing kick_signal's handler), serves the stop signals on
 * the calling thread until it stops, and waits for it.  Returns its exit
 * code, 128 + N for stop signal N, with its stop reason in reason.
 */
int stress_vm_run(struct veil_vm *vm, int kick_signal, char *reason, size_t len);
bool stress_vm_stopping(struct veil_vm *vm);
/* Waits up to ms for vm to stop; whether it did. */
bool stress_vm_wait_stop(struct veil_vm *vm, int ms);

#endif
