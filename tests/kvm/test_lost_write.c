/*
 * kvm: I1 end to end, on real guest_memfd.  An io_uring read into a
 * registered buffer over a guest page is in flight when the page is punched.
 * Without veil's synchronization the data lands in the orphaned page and the
 * guest's view reads zeros: the lost write of DESIGN.md §3, reproduced with
 * raw kernel calls.  Through gmem, the punch waits for the request's pin, the
 * write is visible while it is still the guest's page, and only then is the
 * page punched, after the long-term registration was released.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "gmem.h"
#include "kvm_uapi.h"
#include "test.h"
#include "vm.h"

#define PAGE 4096
#define MEM (2ULL << 20)
#define GPA 0x10000ULL

static uint8_t pattern[PAGE];

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { 0, (long)ms * 1000000L };

	nanosleep(&ts, NULL);
}

/* Submits a fixed-buffer read from the pipe into buf; it stays in flight until the pipe has data. */
static void submit_read(struct io_uring *ring, int rfd, void *buf)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	io_uring_prep_read_fixed(sqe, rfd, buf, PAGE, 0, 0);
	CHECK_EQ(io_uring_submit(ring), 1);
}

static int complete(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;
	int res;

	CHECK_EQ(io_uring_wait_cqe(ring, &cqe), 0);
	res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res;
}

/* Raw kernel calls, no veil: the hazard itself. */
static void test_unprotected(int vm_fd)
{
	struct kvm_create_guest_memfd args = {
		.size = MEM, .flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
	};
	int fd = ioctl(vm_fd, KVM_CREATE_GUEST_MEMFD, &args), p[2];
	struct io_uring ring;
	struct iovec iov;
	uint8_t *mem, view[PAGE];

	CHECK(fd >= 0 && pipe(p) == 0);
	mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(mem != MAP_FAILED);
	memset(mem + GPA, 0xee, PAGE);
	CHECK_EQ(io_uring_queue_init(4, &ring, 0), 0);
	iov = (struct iovec){ mem + GPA, PAGE };
	CHECK_EQ(io_uring_register_buffers(&ring, &iov, 1), 0);
	submit_read(&ring, p[0], mem + GPA);
	sleep_ms(20);
	CHECK_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, GPA, PAGE), 0);
	CHECK_EQ(write(p[1], pattern, PAGE), PAGE);
	CHECK_EQ(complete(&ring), PAGE); /* the device reports success... */
	memcpy(view, mem + GPA, PAGE);
	/* ...but the guest's page reads zeros: the write went to the orphaned page. */
	CHECK(memcmp(view, pattern, PAGE) != 0);
	CHECK_EQ(view[0], 0);
	CHECK_EQ(view[PAGE - 1], 0);
	io_uring_queue_exit(&ring);
	munmap(mem, MEM);
	close(fd);
	close(p[0]);
	close(p[1]);
}

struct reg {
	struct io_uring *ring;
	struct iovec iov;
	unsigned int releases, restores;
};

static int reg_release(void *opaque)
{
	struct reg *r = opaque;

	r->releases++;
	return io_uring_unregister_buffers(r->ring);
}

static int reg_restore(void *opaque)
{
	struct reg *r = opaque;

	r->restores++;
	return io_uring_register_buffers(r->ring, &r->iov, 1);
}

static const struct gmem_longterm_ops reg_ops = {
	.release = reg_release, .restore = reg_restore, .name = "test ring",
};

struct punch_bg {
	struct gmem *gm;
	int ret;
	volatile int done;
};

static void *punch_thread(void *arg)
{
	struct punch_bg *b = arg;
	struct gmem_conv_result res;

	b->ret = gmem_discard(b->gm, GPA, PAGE, &res);
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* The same sequence through gmem: the pin makes the punch wait for the write. */
static void test_protected(int vm_fd)
{
	struct gmem_config cfg = { .vm_fd = vm_fd, .model = GMEM_MODEL_HOST };
	struct gmem_layout l = { .nr = 1, .r = { { 0, MEM } } };
	struct punch_bg bg = { 0 };
	struct gmem_stats st;
	struct io_uring ring;
	struct gmem_pin pin;
	struct reg reg = { .ring = &ring };
	uint8_t view[PAGE];
	pthread_t t;
	int p[2];

	CHECK_EQ(gmem_create_cfg(&cfg, &l, &bg.gm), 0);
	CHECK(pipe(p) == 0);
	CHECK_EQ(io_uring_queue_init(4, &ring, 0), 0);
	CHECK_EQ(gmem_pin(bg.gm, GPA, PAGE, "test-dma", 1, &pin), 0);
	reg.iov = (struct iovec){ pin.hva, PAGE };
	CHECK_EQ(io_uring_register_buffers(&ring, &reg.iov, 1), 0);
	CHECK_EQ(gmem_longterm_register(bg.gm, GPA, PAGE, &reg_ops, &reg), 0);
	submit_read(&ring, p[0], pin.hva);
	pthread_create(&t, NULL, punch_thread, &bg);
	sleep_ms(50);
	CHECK_EQ(__atomic_load_n(&bg.done, __ATOMIC_ACQUIRE), 0); /* the punch waits for the pin */
	CHECK_EQ(write(p[1], pattern, PAGE), PAGE);
	CHECK_EQ(complete(&ring), PAGE);
	memcpy(view, pin.hva, PAGE);
	CHECK(memcmp(view, pattern, PAGE) == 0); /* the write is in the guest's page */
	gmem_unpin(&pin);
	pthread_join(t, NULL);
	CHECK_EQ(bg.ret, 0);
	CHECK_EQ(reg.releases, 1); /* the long-term pin went before the punch */
	CHECK_EQ(reg.restores, 1); /* and came back after it */
	CHECK_EQ(gmem_read(bg.gm, GPA, view, PAGE), 0);
	CHECK_EQ(view[0], 0); /* punched only after the write completed */
	gmem_get_stats(bg.gm, &st);
	CHECK_EQ(st.drain_waits, 1);
	gmem_longterm_unregister(bg.gm, &reg);
	io_uring_queue_exit(&ring);
	gmem_destroy(bg.gm);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	unsigned int max, i;
	int kvm_fd, vm_fd;

	if (kvm_open(&kvm_fd, &max))
		SKIP("no usable /dev/kvm");
	vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm_fd < 0 || ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS) < 3)
		SKIP("no mmappable guest_memfd");
	for (i = 0; i < PAGE; i++)
		pattern[i] = (uint8_t)(i * 13 + 1);
	test_unprotected(vm_fd);
	test_protected(vm_fd);
	close(vm_fd);
	close(kvm_fd);
	return test_done("lost-write");
}
