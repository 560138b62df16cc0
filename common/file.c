/* Reading a whole user-supplied file, with a size limit and a readable error. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"

static int read_fully(int fd, uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = pread(fd, buf + off, len - off, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* shrank under us */
		off += (size_t)n;
	}
	return 0;
}

/*
 * A large buffer (malloc maps it) faulted in by one call instead of a page
 * fault per 4 KiB as the read fills it: for a 65 MiB vmlinux under nested
 * TCG that is seconds.  A hint only (MADV_POPULATE_WRITE is Linux 5.14).
 */
static void file_prefault(uint8_t *buf, size_t len)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), start, end;

	if (len < (1u << 20))
		return;
	start = ((uintptr_t)buf + page - 1) & ~(page - 1);
	end = ((uintptr_t)buf + len) & ~(page - 1);
	if (end > start)
		(void)madvise((void *)start, end - start, MADV_POPULATE_WRITE);
}

int file_read_all(const char *path, size_t max, uint8_t **buf, size_t *len, char *err,
		  size_t errlen)
{
	struct stat st;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s", strerror(-ret));
		return ret;
	}
	ret = -EINVAL;
	if (file_fstat(fd, &st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s", strerror(-ret));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "a directory, not a file");
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		goto out;
	}
	if (st.st_size == 0) {
		snprintf(err, errlen, "the file is empty");
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		snprintf(err, errlen, "%llu MiB, more than the %zu MiB this file may have",
			 (unsigned long long)(st.st_size + (1 << 20) - 1) >> 20, max >> 20);
		goto out;
	}
	*buf = malloc((size_t)st.st_size);
	if (!*buf) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	file_prefault(*buf, (size_t)st.st_size);
	ret = read_fully(fd, *buf, (size_t)st.st_size);
	if (ret) {
		snprintf(err, errlen, "reading: %s", strerror(-ret));
		free(*buf);
		*buf = NULL;
		goto out;
	}
	*len = (size_t)st.st_size;
out:
	close(fd);
	return ret;
}
