/* libveil's boot profile: the vCPUs' exits by kind, their cost, and each device's share. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "exit.h"
#include "veil_vm.h"
#include "vm.h"

_Static_assert((int)VEIL_EXIT_KINDS == (int)VCPU_EXIT_KINDS, "veil.h's exit kinds follow vm.h's");

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

VEIL_EXPORT int veil_vm_set_profiling(struct veil_vm *v, bool on)
{
	int ret = 0;

	pthread_mutex_lock(&v->lock);
	if (v->vm->started) {
		ret = -EBUSY;
	} else {
		v->vm->profile = on;
		v->vm->prof_clock_ns = on ? vcpu_clock_read_cost() : 0;
	}
	pthread_mutex_unlock(&v->lock);
	return ret;
}

VEIL_EXPORT int veil_vm_exit_profile(struct veil_vm *v, struct veil_exit_profile *p)
{
	struct vm *vm = v->vm;
	unsigned int i, k;

	memset(p, 0, sizeof(*p));
	p->timed = vm->profile;
	p->clock_read_ns = vm->prof_clock_ns;
	for (i = 0; i < vm->nr_vcpus; i++) {
		const struct vcpu_profile *vp = &vm->vcpus[i].prof;

		p->run_ns += LOAD(vp->run_ns);
		for (k = 0; k < VEIL_EXIT_KINDS; k++) {
			p->count[k] += LOAD(vp->count[k]);
			p->ns[k] += LOAD(vp->ns[k]);
		}
	}
	for (k = 0; k < VEIL_EXIT_KINDS; k++)
		p->handle_ns += p->ns[k];
	p->coalesced_writes = LOAD(vm->coalesced_writes);
	return 0;
}

struct profile_dev_sum {
	const char *name;
	unsigned int space;
	uint64_t count, ns;
};

/* Each device's I/O exits, summed over the vCPUs, by (name, space); returns how many. */
static unsigned int profile_devs(struct vm *vm, struct profile_dev_sum *out, unsigned int max)
{
	unsigned int i, j, k, n = 0;

	for (i = 0; i < vm->nr_vcpus; i++) {
		const struct vcpu_profile *vp = &vm->vcpus[i].prof;
		unsigned int nr = __atomic_load_n(&vp->nr_dev, __ATOMIC_ACQUIRE);

		for (j = 0; j < nr; j++) {
			const struct vcpu_prof_dev *d = &vp->dev[j];

			for (k = 0; k < n; k++)
				if (out[k].name == d->name && out[k].space == d->space)
					break;
			if (k == n) {
				if (n == max)
					continue;
				out[n++] = (struct profile_dev_sum){ .name = d->name, .space = d->space };
			}
			out[k].count += LOAD(d->count);
			out[k].ns += LOAD(d->ns);
		}
	}
	return n;
}

static double ms(uint64_t ns) { return ns / 1e6; }
static double us_each(uint64_t ns, uint64_t n) { return n ? ns / 1e3 / n : 0.0; }

static void profile_kinds(const struct veil_exit_profile *p, FILE *f)
{
	unsigned int k;

	if (p->coalesced_writes)
		fprintf(f, "veil: profile: %-13s %9llu writes queued by KVM without an exit\n",
			"coalesced", (unsigned long long)p->coalesced_writes);
	for (k = 0; k < VEIL_EXIT_KINDS; k++) {
		if (!p->count[k])
			continue;
		if (p->timed)
			fprintf(f, "veil: profile: %-13s %9llu exits, %9.1f ms in veil (%.1f us each)\n",
				vcpu_exit_kind_name(k), (unsigned long long)p->count[k], ms(p->ns[k]),
				us_each(p->ns[k], p->count[k]));
		else
			fprintf(f, "veil: profile: %-13s %9llu exits\n", vcpu_exit_kind_name(k),
				(unsigned long long)p->count[k]);
	}
}

static void profile_devices(struct vm *vm, FILE *f)
{
	struct profile_dev_sum d[VCPU_PROF_DEVS * 2];
	unsigned int i, n = profile_devs(vm, d, VCPU_PROF_DEVS * 2);

	for (i = 0; i < n; i++)
		fprintf(f, "veil: profile:   %-18s %9llu exits, %9.1f ms in veil (%.1f us each)\n",
			d[i].name, (unsigned long long)d[i].count, ms(d[i].ns),
			us_each(d[i].ns, d[i].count));
	if (n && vm->vcpus[0].prof.nr_dev == VCPU_PROF_DEVS)
		fprintf(f, "veil: profile:   (the last device above also counts the devices past "
			"the first %u)\n", VCPU_PROF_DEVS);
}

static void profile_write(struct veil_vm *v, FILE *f)
{
	struct veil_exit_profile p;
	uint64_t exits = 0, total;
	unsigned int k;

	veil_vm_exit_profile(v, &p);
	for (k = 0; k < VEIL_EXIT_KINDS; k++)
		exits += p.count[k];
	if (!p.timed) {
		fprintf(f, "veil: profile: %llu exits (times need --timing)\n",
			(unsigned long long)exits);
		profile_kinds(&p, f);
		return;
	}
	total = p.run_ns + p.handle_ns;
	fprintf(f, "veil: profile: vCPU time %.1f ms: %.1f ms inside KVM_RUN, %.1f ms in veil "
		"handling %llu exits (%.2f%%); a clock read costs %llu ns, 2 per exit\n",
		ms(total), ms(p.run_ns), ms(p.handle_ns), (unsigned long long)exits,
		total ? 100.0 * p.handle_ns / total : 0.0, (unsigned long long)p.clock_read_ns);
	profile_kinds(&p, f);
	profile_devices(v->vm, f);
}

VEIL_EXPORT int veil_vm_profile_report(struct veil_vm *v, veil_line_fn fn, void *opaque)
{
	char *buf = NULL, *line, *save = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return -ENOMEM;
	profile_write(v, f);
	fclose(f);
	if (!buf)
		return -ENOMEM;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		fn(opaque, line);
	free(buf);
	return 0;
}
