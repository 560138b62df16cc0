/* Firmware payloads: lookup, placement plan, boot info with coherence probes, result check. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "fw.h"
#include "fw_blobs.h"
#include "log.h"
#include "vm.h"

#define FW_MAX_FILE_SIZE (64ULL << 20)
#define FW_RESULT_WORDS (GMEM_PAGE_SIZE / 8)

static const struct {
	const char *name;
	const uint8_t *data;
	const size_t *size;
	bool selftest;
	bool conversions;
} fw_builtins[] = {
	{ "selftest", fw_blob_selftest, &fw_blob_selftest_size, true, false },
	{ "conversions", fw_blob_conversions, &fw_blob_conversions_size, false, true },
	/* arm64, --confidential: device accesses to a page it never shared are refused. */
	{ "refusal", fw_blob_refusal, &fw_blob_refusal_size, false, false },
};

const char *fw_builtin_names(void)
{
	return "selftest conversions refusal";
}

int fw_image_open(const char *name_or_path, struct fw_image *img, char *err, size_t errlen)
{
	unsigned int i;
	uint8_t *buf;
	int ret;

	memset(img, 0, sizeof(*img));
	snprintf(img->name, sizeof(img->name), "%s", name_or_path);
	for (i = 0; i < ARRAY_SIZE(fw_builtins); i++) {
		if (strcmp(name_or_path, fw_builtins[i].name) == 0) {
			img->data = fw_builtins[i].data;
			img->size = *fw_builtins[i].size;
			img->selftest = fw_builtins[i].selftest;
			img->conversions = fw_builtins[i].conversions;
			if (img->size)
				return 0;
			snprintf(err, errlen, "built-in firmware '%s' is not built for this "
				 "architecture", name_or_path);
			return -ENOENT;
		}
	}
	if (!strchr(name_or_path, '/') && access(name_or_path, F_OK) != 0) {
		snprintf(err, errlen, "no built-in firmware of that name (built in: %s) and no such file",
			 fw_builtin_names());
		return -ENOENT;
	}
	ret = file_read_all(name_or_path, FW_MAX_FILE_SIZE, &buf, &img->size, err, errlen);
	if (ret)
		return ret == -EINVAL ? ret : -ENOENT;
	img->owned = buf;
	img->data = buf;
	return 0;
}

int fw_image_from_data(const char *name, const void *data, size_t size, struct fw_image *img)
{
	memset(img, 0, sizeof(*img));
	snprintf(img->name, sizeof(img->name), "%s", name ? name : "(firmware_data)");
	if (!data || !size || size > FW_MAX_FILE_SIZE)
		return -EINVAL;
	img->data = data;
	img->size = size;
	return 0;
}

void fw_image_close(struct fw_image *img)
{
	free(img->owned);
	img->owned = NULL;
}

int fw_plan_compute(const struct gmem_layout *layout, unsigned int nr_cpus, size_t image_size,
		    struct fw_plan *plan)
{
	uint64_t low_end = layout->r[0].gpa + layout->r[0].size, stacks, need;

	if (layout->nr == 0 || layout->r[0].gpa > VEIL_FW_LOAD_GPA || nr_cpus == 0)
		return -ENOSPC;
	stacks = (uint64_t)nr_cpus * VEIL_FW_STACK_SIZE;
	plan->image_end = VEIL_FW_LOAD_GPA + image_size;
	plan->scratch_base = ALIGN_UP(plan->image_end, GMEM_PAGE_SIZE);
	/* One result page per vCPU, and at least one page of probes after them. */
	need = plan->scratch_base + ((uint64_t)nr_cpus + 1) * GMEM_PAGE_SIZE + stacks;
	if (need > low_end)
		return -ENOSPC;
	plan->stacks_end = low_end;
	plan->stacks_base = low_end - stacks;
	plan->scratch_size = plan->stacks_base - plan->scratch_base;
	return 0;
}

uint64_t fw_plan_min_mem(unsigned int nr_cpus, size_t image_size)
{
	uint64_t need = ALIGN_UP(VEIL_FW_LOAD_GPA + image_size, GMEM_PAGE_SIZE) +
			((uint64_t)nr_cpus + 1) * GMEM_PAGE_SIZE + (uint64_t)nr_cpus * VEIL_FW_STACK_SIZE;

	need = ALIGN_UP(need, 1ULL << 20);
	return need < GMEM_MIN_SIZE ? GMEM_MIN_SIZE : need;
}

static void fw_add_probes(struct veil_boot_info *bi, uint64_t start, uint64_t end, unsigned int n)
{
	uint64_t span, gpa;
	unsigned int i;

	if (end <= start + 8)
		return;
	span = end - start;
	for (i = 0; i < n && bi->nr_probes < VEIL_MAX_PROBES; i++) {
		/* Spread over the range, at varying offsets inside a page; the last hits the end. */
		gpa = i + 1 == n ? end - 8 : ALIGN_DOWN(start + span / n * i, 8) + (i * 520) % 4096;
		if (gpa >= end - 8)
			gpa = end - 8;
		bi->probes[bi->nr_probes++] = ALIGN_DOWN(gpa, 8);
	}
}

static int fw_write_probes(struct gmem *gm, struct fw_boot *fb, unsigned int nr_cpus,
			   uint64_t reserve)
{
	const struct gmem_layout *l = gmem_get_layout(gm);
	struct veil_boot_info *bi = &fb->info;
	unsigned int i;
	int ret = 0;

	fw_add_probes(bi, fb->plan.scratch_base + (uint64_t)nr_cpus * GMEM_PAGE_SIZE + reserve,
		      fb->plan.stacks_base, l->nr > 1 ? VEIL_MAX_PROBES / 2 : VEIL_MAX_PROBES);
	for (i = 1; i < l->nr; i++) {
		uint64_t end = l->r[i].gpa + l->r[i].size;

		if (end > fb->arch.mapped_top)
			end = fb->arch.mapped_top;
		fw_add_probes(bi, l->r[i].gpa, end, (VEIL_MAX_PROBES / 2) / (l->nr - 1));
	}
	for (i = 0; i < bi->nr_probes && !ret; i++) {
		uint64_t v = veil_probe_value(bi->seed, bi->probes[i]);

		ret = gmem_write(gm, bi->probes[i], &v, sizeof(v));
	}
	return ret;
}

int fw_boot(struct vm *vm, const struct fw_image *img, const struct fw_boot_opts *opts,
	    struct fw_boot *fb)
{
	unsigned int i;
	int ret;

	memset(fb, 0, sizeof(*fb));
	ret = fw_plan_compute(gmem_get_layout(vm->gmem), vm->nr_vcpus, img->size, &fb->plan);
	if (ret)
		return ret;
	if (opts->reserve + ((uint64_t)vm->nr_vcpus + 1) * GMEM_PAGE_SIZE > fb->plan.scratch_size)
		return -ENOSPC;
	fb->arch.entry = VEIL_FW_LOAD_GPA;
	fb->arch.boot_info_gpa = VEIL_BOOT_INFO_GPA;
	ret = gmem_write(vm->gmem, VEIL_FW_LOAD_GPA, img->data, img->size);
	if (!ret)
		ret = arch_fw_prepare(vm->gmem, &fb->arch);
	if (ret)
		return ret;
	fb->info = (struct veil_boot_info){
		.magic = VEIL_BOOT_MAGIC, .version = VEIL_BOOT_VERSION, .nr_cpus = vm->nr_vcpus,
		.seed = opts->seed, .mapped_top = fb->arch.mapped_top,
		.scratch_base = fb->plan.scratch_base, .scratch_size = fb->plan.scratch_size,
	};
	if (opts->fill)
		opts->fill(&fb->info, &fb->plan, opts->opaque);
	ret = fw_write_probes(vm->gmem, fb, vm->nr_vcpus, opts->reserve);
	if (!ret)
		ret = gmem_write(vm->gmem, VEIL_BOOT_INFO_GPA, &fb->info, sizeof(fb->info));
	for (i = 0; i < vm->nr_vcpus && !ret; i++)
		ret = arch_fw_vcpu_entry(vm->vcpus[i].fd, &fb->arch, i,
					 fb->plan.stacks_end - (uint64_t)i * VEIL_FW_STACK_SIZE);
	return ret;
}

/*
 * What the confidential mode measures of a firmware boot (docs/confidential.md): the image,
 * the boot info and the architecture's page tables, as veil wrote them, and vCPU 0's entry.
 */
void fw_launch_state(const struct fw_boot *fb, const struct fw_image *img,
		     struct arch_boot_state *st)
{
	memset(st, 0, sizeof(*st));
	st->blob[st->nr_blobs++] = (struct arch_blob){ "firmware", fb->arch.entry, img->size };
	st->blob[st->nr_blobs++] = (struct arch_blob){ "bootinfo", fb->arch.boot_info_gpa,
						       sizeof(fb->info) };
	if (fb->arch.pgtable_size)
		st->blob[st->nr_blobs++] = (struct arch_blob){ "pgtable", fb->arch.pgtable_gpa,
							       fb->arch.pgtable_size };
	st->entry = fb->arch.entry;
	st->boot_params = fb->arch.boot_info_gpa;
}

int fw_selftest_verify(struct vm *vm, const struct fw_boot *fb, char *why, size_t len)
{
	uint64_t page[FW_RESULT_WORDS];
	unsigned int cpu, i;
	int ret;

	for (cpu = 0; cpu < vm->nr_vcpus; cpu++) {
		uint64_t gpa = fb->plan.scratch_base + (uint64_t)cpu * GMEM_PAGE_SIZE;

		ret = gmem_read(vm->gmem, gpa, page, sizeof(page));
		if (ret) {
			snprintf(why, len, "reading vCPU %u's result page at 0x%llx: %s", cpu,
				 (unsigned long long)gpa, strerror(-ret));
			return ret;
		}
		for (i = 0; i < FW_RESULT_WORDS; i++) {
			uint64_t want = veil_result_value(fb->info.seed, cpu, i);

			if (page[i] != want) {
				snprintf(why, len,
					 "vCPU %u's result page, word %u at GPA 0x%llx: found 0x%llx, expected 0x%llx",
					 cpu, i, (unsigned long long)(gpa + i * 8ULL),
					 (unsigned long long)page[i], (unsigned long long)want);
				return -EIO;
			}
		}
	}
	return 0;
}
