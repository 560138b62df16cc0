/* The conversions firmware's host side: checked guest-memory actions on request. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "fwsvc.h"
#include "log.h"
#include "veil_internal.h"

#define SVC_DATA_SIZE ((2ULL << 20) + GMEM_PAGE_SIZE)
#define SVC_ALIGN (2ULL << 20)
#define SVC_MAX_LEN (8ULL << 20) /* a host write or check buffers at most this much */

/* Writes or checks len bytes of one value, all or nothing. */
static int64_t host_bytes(struct gmem *gm, const struct veil_svc_req *rq, bool write,
			  uint64_t *where)
{
	uint8_t want = (uint8_t)rq->arg;
	uint64_t stride = (rq->arg >> 8) & 0xffff;
	uint8_t *buf;
	uint64_t i;
	int ret;

	if (!rq->len || rq->len > SVC_MAX_LEN)
		return -EINVAL;
	if (!stride)
		stride = 1;
	buf = malloc(rq->len);
	if (!buf)
		return -ENOMEM;
	if (write) {
		memset(buf, want, rq->len);
		ret = gmem_write(gm, rq->gpa, buf, rq->len);
	} else {
		ret = gmem_read(gm, rq->gpa, buf, rq->len);
		for (i = 0; !ret && i < rq->len; i++) {
			/* Only the qwords the guest wrote, when it samples (see the firmware). */
			uint64_t q = (i % GMEM_PAGE_SIZE) / 8;

			if ((q % stride && q != 511) || buf[i] == want)
				continue;
			*where = i;
			ret = 1;
		}
	}
	free(buf);
	return ret;
}

int fwsvc_serve(struct fwsvc *s, uint32_t cpu)
{
	uint64_t slot = s->ctl_gpa + (uint64_t)cpu * sizeof(struct veil_svc_req);
	struct gmem *gm = veil_internal_gmem(s->vm);
	struct gmem_conv_result res;
	struct veil_svc_req rq;
	int64_t ret;
	int err;

	if (cpu >= veil_internal_nr_vcpus(s->vm))
		return -EINVAL;
	err = gmem_read(gm, slot, &rq, sizeof(rq));
	if (err)
		return err;
	rq.out = 0;
	switch (rq.op) {
	case VEIL_SVC_HOST_WRITE:
		ret = host_bytes(gm, &rq, true, &rq.out);
		break;
	case VEIL_SVC_HOST_CHECK:
		ret = host_bytes(gm, &rq, false, &rq.out);
		break;
	case VEIL_SVC_PUNCH:
		ret = gmem_discard(gm, rq.gpa, rq.len, &res);
		if (ret && res.culprit[0])
			pr_warn("conversions service: punch of GPA 0x%llx: %s",
				(unsigned long long)rq.gpa, res.culprit);
		break;
	case VEIL_SVC_ALLOCATE:
		ret = gmem_allocate(gm, rq.gpa, rq.len);
		break;
	case VEIL_SVC_MAP_GPA_RANGE:
		ret = (int64_t)veil_internal_map_gpa_range(s->vm, cpu, rq.gpa, rq.len, rq.arg);
		break;
	default:
		ret = -EINVAL;
		break;
	}
	__atomic_add_fetch(&s->requests, 1, __ATOMIC_RELAXED);
	if (ret < 0)
		__atomic_add_fetch(&s->refused, 1, __ATOMIC_RELAXED);
	rq.ret = ret;
	return gmem_write(gm, slot + offsetof(struct veil_svc_req, ret), &rq.ret,
			  sizeof(rq.ret) + sizeof(rq.out));
}

int fwsvc_port_vcpu(const struct vm *vm, unsigned int vcpu, uint64_t offset, const void *data,
		    unsigned int len)
{
	uint32_t says;

	if (len != 4 || offset != 0 || vcpu >= veil_internal_nr_vcpus(vm))
		return -EINVAL;
	memcpy(&says, data, sizeof(says));
	return says == vcpu ? (int)vcpu : -EINVAL;
}

static int svc_port_write(void *opaque, unsigned int vcpu, uint64_t offset, const void *data,
			  unsigned int len)
{
	struct fwsvc *s = opaque;
	int cpu = fwsvc_port_vcpu(s->vm, vcpu, offset, data, len);

	return cpu < 0 ? cpu : fwsvc_serve(s, (uint32_t)cpu);
}

static const struct bus_device_ops svc_port_ops = { .write_vcpu = svc_port_write };

static void svc_fill(struct veil_boot_info *bi, const struct fw_plan *plan, void *opaque)
{
	struct fwsvc *s = opaque;

	s->ctl_gpa = plan->scratch_base + (uint64_t)veil_internal_nr_vcpus(s->vm) * GMEM_PAGE_SIZE;
	s->data_gpa = ALIGN_UP(s->ctl_gpa + GMEM_PAGE_SIZE, SVC_ALIGN);
	bi->ctl_gpa = s->ctl_gpa;
	bi->pool_gpa = s->data_gpa;
	bi->pool_pages = SVC_DATA_SIZE / GMEM_PAGE_SIZE;
	bi->conv_port = s->conv_port;
	bi->check_stride = s->check_stride;
	/* The predicate every part of veil asks: a destructive default VM zeroes too. */
	bi->semantics = veil_internal_keeps_contents(s->vm) ? VEIL_CONTENT_PRESERVED
							    : VEIL_CONTENT_ZEROED;
}

int fwsvc_prepare(struct fwsvc *s, struct vm *vm, uint32_t check_stride,
		  struct fw_boot_opts *opts)
{
	char why[200] = "";

	_Static_assert(VEIL_STRESS_MAX_CPUS * sizeof(struct veil_svc_req) <= GMEM_PAGE_SIZE,
		       "one control page holds every vCPU's request");
	memset(s, 0, sizeof(*s));
	s->vm = vm;
	s->check_stride = check_stride ? check_stride : 1;
	if (veil_internal_nr_vcpus(vm) > VEIL_STRESS_MAX_CPUS)
		return -EINVAL;
	if (veil_internal_map_gpa_range_exits(vm, why, sizeof(why)) != 1) {
		s->conv_port = VEIL_PORT_SERVICE;
		pr_info("conversions: the guest converts through %s 0x%x: %s",
			VEIL_FW_REGS_MMIO ? "register" : "port", s->conv_port, why);
	}
	/* The control page, then up to 2 MiB of alignment, then the data area. */
	opts->reserve = GMEM_PAGE_SIZE + SVC_ALIGN + SVC_DATA_SIZE;
	opts->fill = svc_fill;
	opts->opaque = s;
	return veil_internal_add_port(vm, VEIL_PORT_SERVICE, 4, &svc_port_ops, s,
				      "conversions-service");
}

struct fwsvc_build {
	struct fwsvc *s;
	uint32_t check_stride;
};

static int svc_build(void *opaque, struct vm *vm, struct fw_boot_opts *fw)
{
	struct fwsvc_build *b = opaque;

	return fw ? fwsvc_prepare(b->s, vm, b->check_stride, fw) : -EINVAL;
}

int fwsvc_vm_create(struct fwsvc *s, const struct veil_config *cfg, struct veil_vm **out,
		    struct veil_error *err)
{
	struct fwsvc_build b = { .s = s, .check_stride = cfg->boot.check_stride };
	const struct veil_hooks hooks = { .build = svc_build, .opaque = &b };

	return veil_vm_create_hooked(cfg, &hooks, out, err);
}
