/*
 * A fake VM behind struct api_ops, for the request layer's tests and fuzzer:
 * it follows the state machine, records what it was asked, and fails on demand.
 */
#ifndef VEIL_TEST_FAKE_OPS_H
#define VEIL_TEST_FAKE_OPS_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api.h"

struct fake_vm {
	enum api_vm_state state;
	struct api_config ac;
	struct veil_counters counters;
	int fail;          /* the next operation's result, then 0 again */
	unsigned int calls;
	uint64_t last_gpa, last_size, balloon;
	bool last_private, vmm_quit;
	unsigned int nr_extents;
};

static int fake_take_fail(struct fake_vm *f)
{
	int ret = f->fail;

	f->fail = 0;
	f->calls++;
	return ret;
}

static enum api_vm_state fake_state(void *o)
{
	return ((struct fake_vm *)o)->state;
}

static int fake_create(void *o, struct api_config *ac, struct veil_error *err)
{
	struct fake_vm *f = o;
	int ret = fake_take_fail(f);

	if (ret) {
		snprintf(err->msg, sizeof(err->msg), "the fake refuses");
		err->config_fault = ret == -EINVAL;
		return ret;
	}
	f->ac = *ac; /* moved: the caller zeroes nothing, it just does not free */
	f->state = API_VM_CREATED;
	return 0;
}

static int fake_boot(void *o, struct veil_error *err)
{
	struct fake_vm *f = o;
	int ret = fake_take_fail(f);

	(void)err;
	if (!ret)
		f->state = API_VM_RUNNING;
	return ret;
}

static int fake_info(void *o, struct veil_info *in, struct veil_exit *ex,
		     const struct api_config **config)
{
	struct fake_vm *f = o;

	memset(in, 0, sizeof(*in));
	in->state = (enum veil_state)(f->state == API_VM_NONE ? 0 : f->state - 1);
	in->nr_cpus = f->ac.cfg.nr_cpus;
	in->mem_size = f->ac.cfg.mem_size;
	in->model = "host-enforced";
	in->keeps_contents = true;
	/* Two ranges, as x86 has below and above the PCI hole. */
	in->nr_ranges = 2;
	in->ranges[0] = (struct veil_range){ 0, 0x100000 };
	in->ranges[1] = (struct veil_range){ 0x100000, in->mem_size > 0x100000 ?
					     in->mem_size - 0x100000 : 0 };
	ex->code = 0;
	snprintf(ex->reason, sizeof(ex->reason), "the fake stopped");
	*config = &f->ac;
	return 0;
}

static int fake_counters(void *o, struct veil_counters *c)
{
	struct fake_vm *f = o;

	if (f->state == API_VM_RUNNING)
		f->counters.exits += 7; /* moves only while running, like the real one */
	*c = f->counters;
	return fake_take_fail(f);
}

static int fake_device_counters(void *o, veil_counter_fn fn, void *opaque)
{
	(void)o;
	fn(opaque, "virtio-blk0", "reads", 3);
	fn(opaque, "virtio-blk0", "writes", 4);
	fn(opaque, "virtio-balloon0", "discarded_pages", 5);
	return 0;
}

static int fake_pause(void *o)
{
	struct fake_vm *f = o;
	int ret = fake_take_fail(f);

	if (!ret)
		f->state = API_VM_PAUSED;
	return ret;
}

static int fake_resume(void *o)
{
	struct fake_vm *f = o;
	int ret = fake_take_fail(f);

	if (!ret)
		f->state = API_VM_RUNNING;
	return ret;
}

static int fake_shutdown(void *o)
{
	struct fake_vm *f = o;
	int ret = fake_take_fail(f);

	if (!ret)
		f->state = API_VM_STOPPED;
	return ret;
}

static int fake_vmm_shutdown(void *o)
{
	struct fake_vm *f = o;

	f->vmm_quit = true;
	return fake_take_fail(f);
}

static int fake_set_balloon(void *o, uint64_t bytes)
{
	struct fake_vm *f = o;
	int ret = fake_take_fail(f);

	if (!ret && !f->ac.cfg.balloon)
		return -ENODEV;
	if (!ret)
		f->balloon = bytes;
	return ret;
}

static int fake_convert(void *o, uint64_t gpa, uint64_t size, bool to_private,
			struct veil_error *err)
{
	struct fake_vm *f = o;

	(void)err;
	f->last_gpa = gpa;
	f->last_size = size;
	f->last_private = to_private;
	return fake_take_fail(f);
}

static int fake_discard(void *o, uint64_t gpa, uint64_t size, struct veil_error *err)
{
	return fake_convert(o, gpa, size, false, err);
}

static int fake_memory(void *o, struct veil_memory *m, veil_extent_fn fn, void *opaque)
{
	struct fake_vm *f = o;

	memset(m, 0, sizeof(*m));
	m->private_bytes = 4096;
	for (unsigned int i = 0; i < f->nr_extents; i++)
		fn(opaque, (uint64_t)i * 4096, 4096, i & 1);
	return fake_take_fail(f);
}

static const struct api_ops fake_ops = {
	.state = fake_state, .create = fake_create, .boot = fake_boot, .info = fake_info,
	.counters = fake_counters, .device_counters = fake_device_counters, .pause = fake_pause,
	.resume = fake_resume, .shutdown = fake_shutdown, .vmm_shutdown = fake_vmm_shutdown,
	.set_balloon = fake_set_balloon, .convert = fake_convert, .discard = fake_discard,
	.memory = fake_memory,
};

/* veil_config_init()'s defaults, without linking libveil. */
static void fake_defaults(struct veil_config *c)
{
	memset(c, 0, sizeof(*c));
	c->api_version = VEIL_API_VERSION;
	c->nr_cpus = 1;
	c->mem_size = 64ULL << 20;
	c->console_out_fd = -1;
	c->console_in_fd = -1;
	c->seccomp = true;
	c->kick_signal = 10;
	c->kvm_fd = -1;
}

#endif
