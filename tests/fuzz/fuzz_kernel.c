/* fuzz: x86_kernel_parse on mutated bzImages and ELF vmlinux files, and arch_linux_load of what it accepts. */
#include <elf.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "fuzz.h"
#include "gmem.h"
#include "kernel.h"
#include "virtio_drv.h"

#define BZ_SIZE (16 * 1024)
#define BZ_SETUP_SECTS 4
#define ELF_SIZE 8192
#define CAP (BZ_SIZE + 4096)
#define MiB (1ULL << 20)
#define RAM (64 * MiB)
#define BOOT_PARAMS_GPA 0x7000ULL /* where arch/x86/linux.c puts boot_params */
#define ERRLEN 200

/* A relocatable 64-bit bzImage (reloc) or one that goes to code32_start. */
static size_t seed_bzimage(uint8_t *img, bool reloc)
{
	size_t setup = (BZ_SETUP_SECTS + 1) * 512;

	memset(img, 0, BZ_SIZE);
	img[BP_SETUP_SECTS] = BZ_SETUP_SECTS;
	fuzz_put(img + BP_SYSSIZE, 4, (BZ_SIZE - setup) / 16);
	fuzz_put(img + BP_BOOT_FLAG, 2, 0xaa55);
	img[BP_JUMP] = 0xeb;
	img[BP_JUMP + 1] = 0x66;
	fuzz_put(img + BP_HEADER, 4, HDRS_MAGIC);
	fuzz_put(img + BP_VERSION, 2, 0x020f);
	img[BP_LOADFLAGS] = LOADFLAG_LOADED_HIGH;
	fuzz_put(img + BP_CODE32_START, 4, 0x100000);
	fuzz_put(img + BP_INITRD_ADDR_MAX, 4, 0x7fffffff);
	fuzz_put(img + BP_KERNEL_ALIGNMENT, 4, 0x200000);
	img[BP_RELOCATABLE] = reloc;
	fuzz_put(img + BP_XLOADFLAGS, 2, XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G);
	fuzz_put(img + BP_CMDLINE_SIZE, 4, 2047);
	fuzz_put(img + BP_PREF_ADDRESS, 8, reloc ? 0x1000000 : 0);
	fuzz_put(img + BP_INIT_SIZE, 4, 0x100000);
	for (size_t i = setup; i < BZ_SIZE; i++)
		img[i] = (uint8_t)(i * 7);
	return BZ_SIZE;
}

/* An ELF vmlinux: a PT_NOTE, then nload PT_LOADs at 16 MiB + 1 MiB * i, the last with bss. */
static size_t seed_elf(uint8_t *buf, unsigned int nload, bool virt_entry)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	Elf64_Phdr *ph = (Elf64_Phdr *)(buf + sizeof(*eh));
	unsigned int i;

	memset(buf, 0, ELF_SIZE);
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_entry = virt_entry ? 0xffffffff81000040ULL : 0x1000040;
	eh->e_phoff = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = (Elf64_Half)(nload + 1);
	ph[0] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = 0x400, .p_filesz = 0x20 };
	for (i = 1; i <= nload; i++)
		ph[i] = (Elf64_Phdr){
			.p_type = PT_LOAD, .p_offset = 4096 + 1024 * (i - 1),
			.p_vaddr = 0xffffffff81000000ULL + MiB * (i - 1),
			.p_paddr = 0x1000000 + MiB * (i - 1), .p_filesz = 1024,
			.p_memsz = i == nload ? 0x10000 : 1024,
		};
	for (i = 4096; i < ELF_SIZE; i++)
		buf[i] = (uint8_t)(i * 13);
	return ELF_SIZE;
}

/* The header fields the parser reads, so mutations hit them far more often than chance would. */
static const struct { uint16_t off; uint8_t width; } bz_fields[] = {
	{ BP_SETUP_SECTS, 1 }, { BP_SYSSIZE, 4 }, { BP_BOOT_FLAG, 2 }, { BP_JUMP + 1, 1 },
	{ BP_HEADER, 4 }, { BP_VERSION, 2 }, { BP_LOADFLAGS, 1 }, { BP_CODE32_START, 4 },
	{ BP_INITRD_ADDR_MAX, 4 }, { BP_KERNEL_ALIGNMENT, 4 }, { BP_RELOCATABLE, 1 },
	{ BP_XLOADFLAGS, 2 }, { BP_CMDLINE_SIZE, 4 }, { BP_PREF_ADDRESS, 8 }, { BP_INIT_SIZE, 4 },
};
static const struct { uint16_t off; uint8_t width; } eh_fields[] = {
	{ EI_CLASS, 1 }, { EI_DATA, 1 }, { offsetof(Elf64_Ehdr, e_type), 2 },
	{ offsetof(Elf64_Ehdr, e_machine), 2 }, { offsetof(Elf64_Ehdr, e_entry), 8 },
	{ offsetof(Elf64_Ehdr, e_phoff), 8 }, { offsetof(Elf64_Ehdr, e_phentsize), 2 },
	{ offsetof(Elf64_Ehdr, e_phnum), 2 },
}, ph_fields[] = {
	{ offsetof(Elf64_Phdr, p_type), 4 }, { offsetof(Elf64_Phdr, p_offset), 8 },
	{ offsetof(Elf64_Phdr, p_vaddr), 8 }, { offsetof(Elf64_Phdr, p_paddr), 8 },
	{ offsetof(Elf64_Phdr, p_filesz), 8 }, { offsetof(Elf64_Phdr, p_memsz), 8 },
};

static void mutate(struct fuzz *f, uint8_t *img, size_t *len, bool elf)
{
	size_t phoff = elf && *len >= sizeof(Elf64_Ehdr) ? fuzz_get(img + 32, 8) : 0;
	unsigned int k;

	switch (fuzz_below(f, 4)) {
	case 0:
		fuzz_mutate(f, img, len, CAP, 0, 0);
		break;
	case 1: /* aimed at the headers */
		fuzz_mutate(f, img, len, CAP, elf ? 0 : BP_SETUP_SECTS, elf ? 0x200 : BP_HDR_END_MAX);
		break;
	default:
		if (!elf) {
			k = (unsigned int)fuzz_below(f, ARRAY_SIZE(bz_fields));
			fuzz_field(f, img, *len, bz_fields[k].off, bz_fields[k].width);
		} else if (fuzz_one_in(f, 3)) {
			k = (unsigned int)fuzz_below(f, ARRAY_SIZE(eh_fields));
			fuzz_field(f, img, *len, eh_fields[k].off, eh_fields[k].width);
		} else if (phoff < CAP) {
			k = (unsigned int)fuzz_below(f, ARRAY_SIZE(ph_fields));
			fuzz_field(f, img, *len, phoff + 56 * fuzz_below(f, 5) + ph_fields[k].off,
				   ph_fields[k].width);
		}
		break;
	}
}

static bool inside(const uint8_t *img, size_t len, const uint8_t *p, uint64_t n)
{
	return p >= img && p <= img + len && n <= (uint64_t)(img + len - p);
}

/* The reference for where an accepted image starts: the boot protocol's, and the ELF loader's. */
static uint64_t ref_entry(const uint8_t *img, const struct x86_kernel *k)
{
	uint64_t pref = fuzz_get(img + BP_PREF_ADDRESS, 8), align = fuzz_get(img + BP_KERNEL_ALIGNMENT, 4);
	uint64_t e = fuzz_get(img + offsetof(Elf64_Ehdr, e_entry), 8);
	Elf64_Phdr ph;

	if (k->kind == X86_KERNEL_BZIMAGE) {
		if (img[BP_RELOCATABLE])
			return ((pref ? pref : 0x1000000) + align - 1) / align * align + 0x200;
		return (pref ? pref : fuzz_get(img + BP_CODE32_START, 4)) + 0x200;
	}
	/*
	 * The first PT_LOAD, in header order, whose file contents hold e_entry
	 * physically, or else virtually (an entry in zero fill would run zeros).
	 */
	for (unsigned int i = 0; i < fuzz_get(img + offsetof(Elf64_Ehdr, e_phnum), 2); i++) {
		memcpy(&ph, img + fuzz_get(img + offsetof(Elf64_Ehdr, e_phoff), 8) + i * sizeof(ph),
		       sizeof(ph));
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		if (e >= ph.p_paddr && e - ph.p_paddr < ph.p_filesz)
			return e;
		if (e >= ph.p_vaddr && e - ph.p_vaddr < ph.p_filesz)
			return e - ph.p_vaddr + ph.p_paddr;
	}
	return UINT64_MAX;
}

static bool disjoint(const struct x86_kernel *k)
{
	for (unsigned int i = 0; i < k->nr_segs; i++)
		for (unsigned int j = i + 1; j < k->nr_segs; j++)
			if (k->segs[i].paddr < k->segs[j].paddr + k->segs[j].memsz &&
			    k->segs[j].paddr < k->segs[i].paddr + k->segs[i].memsz)
				return false;
	return true;
}

/* What an accepted image promises: every segment inside the file and inside [1 MiB, 4 GiB). */
static void check_accepted(const uint8_t *img, size_t len, const struct x86_kernel *k)
{
	uint64_t lo = UINT64_MAX, hi = 0;
	bool entry_in = false;

	CHECK(k->nr_segs >= 1 && k->nr_segs <= X86_KERNEL_MAX_SEGS);
	for (unsigned int i = 0; i < k->nr_segs && i < X86_KERNEL_MAX_SEGS; i++) {
		const struct x86_kernel_seg *s = &k->segs[i];

		CHECK(inside(img, len, s->data, s->filesz));
		CHECK(s->filesz <= s->memsz);
		/* Empty PT_LOADs are dropped, so none may sit at exactly 4 GiB either. */
		CHECK(s->paddr >= MiB && s->memsz < (1ULL << 32) && s->paddr < (1ULL << 32));
		CHECK(k->kind != X86_KERNEL_ELF || s->memsz > 0);
		/* A bzImage's end is the loader's to check against RAM; an ELF's, the parser's. */
		if (k->kind == X86_KERNEL_ELF)
			CHECK(s->memsz <= (1ULL << 32) - s->paddr);
		lo = s->paddr < lo ? s->paddr : lo;
		hi = s->paddr + s->memsz > hi ? s->paddr + s->memsz : hi;
		entry_in |= k->entry >= s->paddr && k->entry - s->paddr < s->filesz;
	}
	CHECK(k->load_addr >= MiB && k->load_addr < (1ULL << 32));
	CHECK_EQ(k->entry, ref_entry(img, k));
	CHECK(k->load_addr <= lo);
	CHECK(k->init_size >= hi - k->load_addr);
	if (k->kind == X86_KERNEL_ELF) {
		CHECK(entry_in);
		CHECK_EQ(k->load_addr, lo);
		CHECK(disjoint(k)); /* overlapping segments are refused */
	} else {
		CHECK_EQ(k->kind, X86_KERNEL_BZIMAGE);
		CHECK(k->version >= 0x020c);
		CHECK(k->xloadflags & XLF_KERNEL_64);
		CHECK(k->hdr_len >= 0x11 && BP_SETUP_SECTS + k->hdr_len <= BP_HDR_END_MAX);
		CHECK_EQ(k->nr_segs, 1);
	}
}

/* The loader puts the segments and the initrd where the image says, without overlap. */
static void check_load(struct gmem *gm, const uint8_t *img, size_t len, const struct x86_kernel *k)
{
	static uint8_t initrd[8192], got[CAP];
	struct arch_linux_boot b = {
		.kernel = img, .kernel_size = len, .initrd = initrd, .initrd_size = sizeof(initrd),
		.cmdline = "console=ttyS0",
	};
	struct arch_boot_state st;
	char err[ERRLEN] = "";
	uint8_t bp[BP_SIZE];
	uint64_t rd;
	int ret;

	memset(initrd, 0xa5, sizeof(initrd));
	ret = arch_linux_load(gm, &b, 1, &st, err, sizeof(err));
	if (ret) {
		if (ret != -ENOSPC && ret != -E2BIG)
			fprintf(stderr, "arch_linux_load: %d: %s\n", ret, err);
		/* Refused for want of room, never for an image the parser accepted. */
		CHECK(ret == -ENOSPC || ret == -E2BIG);
		CHECK(err[0] != '\0');
		return;
	}
	CHECK_EQ(st.entry, k->entry);
	CHECK_EQ(gmem_read(gm, BOOT_PARAMS_GPA, bp, sizeof(bp)), 0);
	rd = fuzz_get(bp + BP_RAMDISK_IMAGE, 4) | fuzz_get(bp + BP_EXT_RAMDISK_IMAGE, 4) << 32;
	CHECK(rd >= k->load_addr + k->init_size || rd + sizeof(initrd) <= k->load_addr);
	CHECK(rd + sizeof(initrd) - 1 <= k->initrd_addr_max);
	CHECK(rd + sizeof(initrd) <= RAM);
	if (!disjoint(k))
		return; /* a bzImage is one segment; an ELF's overlap is refused (check_accepted) */
	for (unsigned int i = 0; i < k->nr_segs; i++) {
		const struct x86_kernel_seg *s = &k->segs[i];
		uint64_t n = s->filesz < sizeof(got) ? s->filesz : sizeof(got);

		if (!n)
			continue; /* bss only: nothing copied */
		CHECK_EQ(gmem_read(gm, s->paddr, got, n), 0);
		CHECK(memcmp(got, s->data, n) == 0);
	}
}

/* The parser on len bytes at img, and the loader on what it accepts; true if accepted. */
static bool check_image(struct gmem *gm, const uint8_t *work, size_t len)
{
	struct x86_kernel k;
	char err[ERRLEN];
	uint8_t *img;
	int ret;

	/* Exactly len bytes on the heap: ASan sees a read past the end of the file. */
	img = malloc(len ? len : 1);
	memcpy(img, work, len);
	memset(err, 0, sizeof(err));
	ret = x86_kernel_parse(img, len, &k, err, sizeof(err));
	if (ret == 0) {
		check_accepted(img, len, &k);
		check_load(gm, img, len, &k);
	} else {
		CHECK_EQ(ret, -EINVAL);
		CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
	}
	free(img);
	return ret == 0;
}

static void one(struct fuzz *f, struct gmem *gm, uint8_t *work, unsigned long *accepted)
{
	unsigned int kind = (unsigned int)fuzz_below(f, 4), n = (unsigned int)fuzz_below(f, 9);
	size_t len = kind == 0 ? seed_bzimage(work, true) : kind == 1 ? seed_bzimage(work, false) :
		     seed_elf(work, kind == 2 ? 1 : 3, kind == 2);

	for (unsigned int i = 0; i < n; i++)
		mutate(f, work, &len, kind >= 2);
	if (check_image(gm, work, len))
		(*accepted)++;
	else
		CHECK(n > 0); /* the seeds are good images */
}

#ifdef VEIL_LIBFUZZER
/*
 * First byte even: the rest is the image itself (a bzImage or an ELF);
 * odd: the rest are the choices of one(), which starts from a good image.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct gmem *gm;
	static uint8_t *work;
	unsigned long accepted = 0;
	struct fuzz f;

	if (!gm) {
		gm = test_gmem(RAM, 20);
		work = malloc(CAP);
	}
	fuzz_lf_begin(&f, "fuzz_kernel", data, size);
	if (size && data[0] & 1) {
		f.in_pos = 1;
		one(&f, gm, work, &accepted);
	} else {
		check_image(gm, size ? data + 1 : data, size ? size - 1 : 0);
	}
	fuzz_lf_end(&f);
	return 0;
}
#else
int main(void)
{
	struct gmem *gm = test_gmem(RAM, 20);
	uint8_t *work = malloc(CAP);
	unsigned long accepted = 0;
	struct fuzz f;

	fuzz_init(&f, "fuzz_kernel", 0x6b65726e656c, 40000);
	FUZZ_FOR_EACH(&f, i) {
		one(&f, gm, work, &accepted);
		if (!fuzz_end(&f, i))
			break;
	}
	printf("fuzz_kernel: %lu accepted\n", accepted);
	/* A fuzzer that never gets past the magic tests nothing. */
	if (!test_failures && f.iters >= 1000)
		CHECK(accepted > f.iters / 20);
	free(work);
	gmem_destroy(gm);
	return test_done("fuzz_kernel");
}
#endif
