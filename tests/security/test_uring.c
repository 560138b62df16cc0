/*
 * security: the I/O thread's io_uring takes only the operations veil submits.
 * io_uring runs operations in the kernel, past seccomp, so without this a
 * confined I/O thread could still open files or sockets through its ring.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iothread.h"
#include "test.h"

/* Submits the one SQE prepared by prep and returns its completion's result. */
static int submit_one(struct iothread *t, void (*prep)(struct io_uring_sqe *, void *), void *arg)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);
	struct io_uring_cqe *cqe;
	int ret;

	if (!sqe)
		return -ENOSPC;
	prep(sqe, arg);
	ret = io_uring_submit_and_wait(&t->ring, 1);
	if (ret < 0)
		return ret;
	ret = io_uring_wait_cqe(&t->ring, &cqe);
	if (ret < 0)
		return ret;
	ret = cqe->res;
	io_uring_cqe_seen(&t->ring, cqe);
	return ret;
}

static void prep_openat(struct io_uring_sqe *sqe, void *arg)
{
	(void)arg;
	io_uring_prep_openat(sqe, AT_FDCWD, "/proc/self/status", O_RDONLY, 0);
}

static void prep_socket(struct io_uring_sqe *sqe, void *arg)
{
	(void)arg;
	io_uring_prep_rw(IORING_OP_SOCKET, sqe, AF_INET, NULL, SOCK_STREAM, 0);
}

static void prep_nop(struct io_uring_sqe *sqe, void *arg)
{
	(void)arg;
	io_uring_prep_nop(sqe);
}

static void prep_poll(struct io_uring_sqe *sqe, void *arg)
{
	io_uring_prep_poll_add(sqe, *(int *)arg, POLLIN);
}

int main(void)
{
	struct iothread t;
	uint64_t one = 1;
	int ret;

	ret = iothread_init(&t, 8);
	if (ret == -EINVAL || ret == -ENOSYS || ret == -EPERM)
		SKIP("no restricted io_uring here (%d)", ret);
	CHECK_EQ(ret, 0);
	if (ret)
		return test_done("test_uring");
	/* What veil uses works: a poll on an eventfd that has a count. */
	CHECK(write(t.stop_efd, &one, sizeof(one)) == sizeof(one));
	CHECK(submit_one(&t, prep_poll, &t.stop_efd) & POLLIN);
	/* What it does not use is refused by the kernel, before it runs. */
	CHECK_EQ(submit_one(&t, prep_openat, NULL), -EACCES);
	CHECK_EQ(submit_one(&t, prep_socket, NULL), -EACCES);
	CHECK_EQ(submit_one(&t, prep_nop, NULL), -EACCES);
	/* And the ring cannot be given new files, buffers or restrictions. */
	CHECK_EQ(io_uring_register(t.ring.ring_fd, IORING_REGISTER_FILES, &t.stop_efd, 1), -EACCES);
	iothread_destroy(&t);
	return test_done("test_uring");
}
