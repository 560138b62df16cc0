/*
 * kvm: host<->guest coherence through the guest_memfd mapping, and PUNCH_HOLE.
 * The peek firmware reads and writes guest memory on command from a test
 * device; between commands the host writes, reads and punches through gmem.
 */
#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "fw.h"
#include "fw_blobs.h"
#include "kvm_uapi.h"
#include "test.h"
#include "vm_run.h"
#include "veil_peek.h"
#include "vm.h"

#define G1 0x800000ULL
#define G2 0x900000ULL
#define G3 0xa00000ULL

enum step_kind { HOST_WRITE, HOST_PUNCH, HOST_EXPECT, GUEST_READ, GUEST_WRITE, DONE };

struct step {
	enum step_kind kind;
	uint64_t gpa;
	uint64_t val; /* written, or expected */
};

static const struct step script[] = {
	/* host -> guest */
	{ HOST_WRITE, G1, 0x1111222233334444ULL },
	{ GUEST_READ, G1, 0x1111222233334444ULL },
	/* guest -> host */
	{ GUEST_WRITE, G2, 0x5555666677778888ULL },
	{ HOST_EXPECT, G2, 0x5555666677778888ULL },
	/* a punched page reads zeros for both; its neighbour is untouched */
	{ HOST_WRITE, G3, 0x9999aaaabbbbccccULL },
	{ HOST_WRITE, G3 + 4096, 0xddddeeeeffff0000ULL },
	{ GUEST_READ, G3, 0x9999aaaabbbbccccULL },
	{ HOST_PUNCH, G3, 0 },
	{ GUEST_READ, G3, 0 },
	{ GUEST_READ, G3 + 4096, 0xddddeeeeffff0000ULL },
	{ HOST_EXPECT, G3, 0 },
	/* the page comes back on the next write, still coherent */
	{ GUEST_WRITE, G3, 0x0123456789abcdefULL },
	{ HOST_EXPECT, G3, 0x0123456789abcdefULL },
	{ DONE, 0, 0 },
};

struct peek_dev {
	struct vm *vm;
	unsigned int pc;        /* next script step */
	const struct step *cur; /* the guest step being served */
	uint64_t read_val;
	unsigned int guest_steps;
};

/* Runs host steps up to the next guest step, which it returns. */
static const struct step *run_host_steps(struct peek_dev *d)
{
	uint64_t v;

	for (;; d->pc++) {
		const struct step *s = &script[d->pc];

		switch (s->kind) {
		case HOST_WRITE:
			CHECK_EQ(gmem_write(d->vm->gmem, s->gpa, &s->val, 8), 0);
			break;
		case HOST_PUNCH:
			CHECK_EQ(gmem_punch_hole(d->vm->gmem, s->gpa, 4096), 0);
			break;
		case HOST_EXPECT:
			v = ~0ULL;
			CHECK_EQ(gmem_read(d->vm->gmem, s->gpa, &v, 8), 0);
			if (v != s->val)
				fprintf(stderr, "step %u: host read 0x%llx at 0x%llx\n", d->pc,
					(unsigned long long)v, (unsigned long long)s->gpa);
			CHECK(v == s->val);
			break;
		default:
			return &script[d->pc++];
		}
	}
}

static int peek_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	struct peek_dev *d = opaque;
	uint32_t v = 0;

	if (len != 4)
		return -EINVAL;
	switch (off + PEEK_PORT_OP) {
	case PEEK_PORT_OP:
		d->cur = run_host_steps(d);
		d->guest_steps++;
		v = d->cur->kind == GUEST_READ ? PEEK_OP_READ :
		    d->cur->kind == GUEST_WRITE ? PEEK_OP_WRITE : PEEK_OP_DONE;
		break;
	case PEEK_PORT_ADDR_LO: v = (uint32_t)d->cur->gpa; break;
	case PEEK_PORT_ADDR_HI: v = (uint32_t)(d->cur->gpa >> 32); break;
	case PEEK_PORT_VAL_LO: v = (uint32_t)d->cur->val; break;
	case PEEK_PORT_VAL_HI: v = (uint32_t)(d->cur->val >> 32); break;
	default: return -EINVAL;
	}
	*(uint32_t *)data = v;
	return 0;
}

static int peek_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	struct peek_dev *d = opaque;
	uint32_t v = *(const uint32_t *)data;

	if (len != 4)
		return -EINVAL;
	if (off + PEEK_PORT_OP == PEEK_PORT_VAL_LO) {
		d->read_val = v;
	} else if (off + PEEK_PORT_OP == PEEK_PORT_VAL_HI) {
		d->read_val |= (uint64_t)v << 32;
		if (d->read_val != d->cur->val)
			fprintf(stderr, "step %u: guest read 0x%llx at 0x%llx, expected 0x%llx\n",
				d->pc - 1, (unsigned long long)d->read_val,
				(unsigned long long)d->cur->gpa, (unsigned long long)d->cur->val);
		CHECK(d->read_val == d->cur->val);
	}
	return 0;
}

static const struct bus_device_ops peek_ops = { .read = peek_read, .write = peek_write };

int main(void)
{
	struct vm_config cfg = { .nr_cpus = 1, .mem_size = 16ULL << 20, .console_fd = STDOUT_FILENO };
	struct fw_image img = { .name = "peek" };
	struct peek_dev dev = { 0 };
	struct fw_boot fb;
	struct vm *vm;
	int kvm_fd, ret;
	unsigned int max;

	if (kvm_open(&kvm_fd, &max))
		SKIP("no usable /dev/kvm");
	close(kvm_fd);
	img.data = fw_blob_peek;
	img.size = fw_blob_peek_size;
	ret = vm_create(&cfg, &vm);
	CHECK_EQ(ret, 0);
	if (ret)
		return test_done("coherence");
	dev.vm = vm;
	CHECK_EQ(bus_register(vm->bus, BUS_PIO, PEEK_PORT_OP, PEEK_PORT_VAL_HI + 4 - PEEK_PORT_OP,
			      &peek_ops, &dev, "peek"), 0);
	CHECK_EQ(fw_boot(vm, &img, &(struct fw_boot_opts){ .seed = 42 }, &fb), 0);
	CHECK_EQ(test_vm_run(vm), VM_EXIT_POWEROFF);
	fprintf(stderr, "stop: %s\n", vm->stop_reason);
	/* Every guest step ran, DONE included. */
	CHECK_EQ(dev.guest_steps, 7);
	CHECK_EQ(dev.pc, ARRAY_SIZE(script));
	vm_destroy(vm);
	return test_done("coherence");
}
