/*
 * veil's command line and the control API: `veil serve` whole, and the
 * three calls `veil run --api-socket PATH` makes around its VM.
 */
#ifndef VEIL_API_CLI_H
#define VEIL_API_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "veil.h"

/* veil serve [options]: argv[0] is "serve".  Returns the exit code. */
int api_cli_serve(int argc, char **argv);

struct api_cli;

/*
 * veil run --api-socket PATH, after veil_vm_start() and before the caller
 * confines itself: binds path and starts the API thread for vm, created from
 * cfg (which must outlive it).  0, or -errno with err set.
 */
int api_cli_open(struct api_cli **out, const char *path, struct veil_vm *vm,
		 const struct veil_config *cfg, char *err, size_t len) __attribute__((warn_unused_result));

/*
 * Instead of waiting for the VM: serves the API's calls until it stops
 * (the guest, vm.shutdown or vmm.shutdown with code 0); a stop signal read
 * from the signalfd sfd (-1: none) stops it with 128 + N.  The caller then
 * veil_vm_wait()s as before.
 */
void api_cli_wait(struct api_cli *c, int sfd);

/* Stops the API thread and removes the socket. */
void api_cli_close(struct api_cli *c);

#endif
