/* Reading a whole user-supplied file, with a size limit and a readable error. */
#ifndef VEIL_FILE_H
#define VEIL_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compiler.h"

/*
 * Reads a regular file of 1 to max bytes into a new buffer.  -ENOENT/-EACCES
 * etc. when it cannot be opened, -EINVAL when it is empty, too large or not a
 * regular file; err says which in words.
 */
int file_read_all(const char *path, size_t max, uint8_t **buf, size_t *len, char *err,
		  size_t errlen) __must_check;

/*
 * fstat() as the fstat system call.  glibc 2.33+ implements fstat() with
 * newfstatat(fd, "", AT_EMPTY_PATH), a path lookup that seccomp cannot tell
 * from one of "/etc/shadow", so the filters deny newfstatat (vmm/sandbox.c).
 * On the 64-bit architectures veil supports, struct stat is the kernel's.
 */
static inline int file_fstat(int fd, struct stat *st)
{
	return (int)syscall(SYS_fstat, fd, st);
}

#endif
