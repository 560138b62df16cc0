/* unit: the x86 boot-image parser against bzImage headers and ELF files built here, good and damaged. */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "test.h"

#define IMG_SIZE (64 * 1024)
#define SETUP_SECTS 4

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

/* A well-formed, relocatable 64-bit bzImage header over IMG_SIZE bytes. */
static uint8_t *good_bzimage(void)
{
	uint8_t *img = calloc(1, IMG_SIZE);
	size_t setup = (SETUP_SECTS + 1) * 512;

	img[BP_SETUP_SECTS] = SETUP_SECTS;
	put32(img + BP_SYSSIZE, (uint32_t)((IMG_SIZE - setup) / 16));
	put16(img + BP_BOOT_FLAG, 0xaa55);
	img[BP_JUMP] = 0xeb;
	img[BP_JUMP + 1] = 0x66; /* header ends at 0x268 */
	put32(img + BP_HEADER, HDRS_MAGIC);
	put16(img + BP_VERSION, 0x020f);
	img[BP_LOADFLAGS] = LOADFLAG_LOADED_HIGH;
	put32(img + BP_CODE32_START, 0x100000);
	put32(img + BP_INITRD_ADDR_MAX, 0x7fffffff);
	put32(img + BP_KERNEL_ALIGNMENT, 0x200000);
	img[BP_RELOCATABLE] = 1;
	put16(img + BP_XLOADFLAGS, XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G);
	put32(img + BP_CMDLINE_SIZE, 2047);
	put64(img + BP_PREF_ADDRESS, 0x1000000);
	put32(img + BP_INIT_SIZE, 0x800000);
	return img;
}

static int parse(const uint8_t *img, size_t len, struct x86_kernel *k, char *err)
{
	err[0] = 0;
	return x86_kernel_parse(img, len, k, err, 200);
}

static void test_good_bzimage(void)
{
	uint8_t *img = good_bzimage();
	struct x86_kernel k;
	char err[200];

	CHECK_EQ(parse(img, IMG_SIZE, &k, err), 0);
	CHECK_EQ(k.kind, X86_KERNEL_BZIMAGE);
	CHECK_EQ(k.version, 0x020f);
	CHECK_EQ(k.load_addr, 0x1000000);
	CHECK_EQ(k.entry, 0x1000200);
	CHECK_EQ(k.init_size, 0x800000);
	CHECK_EQ(k.cmdline_size, 2047);
	CHECK_EQ(k.initrd_addr_max, 0x7fffffff);
	CHECK_EQ(k.hdr_len, 0x268 - 0x1f1);
	CHECK_EQ(k.nr_segs, 1);
	CHECK_EQ(k.segs[0].filesz, IMG_SIZE - (SETUP_SECTS + 1) * 512);
	CHECK(k.segs[0].data == img + (SETUP_SECTS + 1) * 512);
	/* pref_address is honoured up to kernel_alignment. */
	put64(img + BP_PREF_ADDRESS, 0x1100000);
	CHECK_EQ(parse(img, IMG_SIZE, &k, err), 0);
	CHECK_EQ(k.load_addr, 0x1200000);
	/* A non-relocatable kernel goes where it asks. */
	img[BP_RELOCATABLE] = 0;
	put64(img + BP_PREF_ADDRESS, 0);
	CHECK_EQ(parse(img, IMG_SIZE, &k, err), 0);
	CHECK_EQ(k.load_addr, 0x100000);
	/* setup_sects 0 means 4. */
	img[BP_SETUP_SECTS] = 0;
	CHECK_EQ(parse(img, IMG_SIZE, &k, err), 0);
	CHECK_EQ(k.segs[0].filesz, IMG_SIZE - 5 * 512);
	free(img);
}

/* Damages one field and expects -EINVAL with a message containing want. */
static void expect_bad(void (*damage)(uint8_t *img), size_t len, const char *want)
{
	uint8_t *img = good_bzimage();
	struct x86_kernel k;
	char err[200];

	damage(img);
	CHECK_EQ(parse(img, len, &k, err), -EINVAL);
	CHECK_STR_CONTAINS(err, want);
	free(img);
}

static void no_damage(uint8_t *img) { (void)img; }
static void bad_magic(uint8_t *img) { img[BP_HEADER] = 'X'; }
static void bad_flag(uint8_t *img) { put16(img + BP_BOOT_FLAG, 0); }
static void old_version(uint8_t *img) { put16(img + BP_VERSION, 0x020b); }
static void no_64bit(uint8_t *img) { put16(img + BP_XLOADFLAGS, 0); }
static void zimage(uint8_t *img) { img[BP_LOADFLAGS] = 0; }
static void huge_syssize(uint8_t *img) { put32(img + BP_SYSSIZE, 0x10000000); }
static void zero_syssize(uint8_t *img) { put32(img + BP_SYSSIZE, 0); }
static void huge_setup(uint8_t *img) { img[BP_SETUP_SECTS] = 200; }
static void bad_align(uint8_t *img) { put32(img + BP_KERNEL_ALIGNMENT, 0x3000); }
static void small_init(uint8_t *img) { put32(img + BP_INIT_SIZE, 0x1000); }
static void high_load(uint8_t *img) { put64(img + BP_PREF_ADDRESS, 0x100000000ULL); }

static void test_bad_bzimage(void)
{
	expect_bad(no_damage, IMG_SIZE / 2, "truncated");
	expect_bad(no_damage, 0x100, "too short");
	expect_bad(bad_magic, IMG_SIZE, "not a Linux kernel");
	expect_bad(bad_flag, IMG_SIZE, "not a Linux kernel");
	expect_bad(old_version, IMG_SIZE, "2.11 is too old");
	expect_bad(no_64bit, IMG_SIZE, "64-bit");
	expect_bad(zimage, IMG_SIZE, "zImage");
	expect_bad(huge_syssize, IMG_SIZE, "truncated");
	expect_bad(zero_syssize, IMG_SIZE, "truncated");
	expect_bad(huge_setup, IMG_SIZE, "truncated: the setup code");
	expect_bad(bad_align, IMG_SIZE, "kernel_alignment");
	expect_bad(small_init, IMG_SIZE, "init_size");
	expect_bad(high_load, IMG_SIZE, "outside");
}

/* An ELF vmlinux with one PT_LOAD at 16 MiB whose entry is given virtually. */
static size_t make_elf(uint8_t *buf, uint64_t entry)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	Elf64_Phdr *ph = (Elf64_Phdr *)(buf + sizeof(*eh));

	memset(buf, 0, 8192);
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_entry = entry;
	eh->e_phoff = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = 1;
	ph->p_type = PT_LOAD;
	ph->p_offset = 4096;
	ph->p_vaddr = 0xffffffff81000000ULL;
	ph->p_paddr = 0x1000000;
	ph->p_filesz = 4096;
	ph->p_memsz = 0x10000;
	return 8192;
}

static void test_elf(void)
{
	uint8_t *buf = malloc(8192);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	Elf64_Phdr *ph = (Elf64_Phdr *)(buf + sizeof(*eh));
	struct x86_kernel k;
	char err[200];
	size_t len;

	len = make_elf(buf, 0xffffffff81000040ULL);
	CHECK_EQ(parse(buf, len, &k, err), 0);
	CHECK_EQ(k.kind, X86_KERNEL_ELF);
	CHECK_EQ(k.entry, 0x1000040); /* virtual entry translated to physical */
	CHECK_EQ(k.load_addr, 0x1000000);
	CHECK_EQ(k.init_size, 0x10000);
	len = make_elf(buf, 0x1000080);
	CHECK_EQ(parse(buf, len, &k, err), 0);
	CHECK_EQ(k.entry, 0x1000080);
	make_elf(buf, 0x5000000);
	CHECK_EQ(parse(buf, len, &k, err), -EINVAL);
	CHECK_STR_CONTAINS(err, "entry point");
	make_elf(buf, 0x1000000);
	ph->p_filesz = 8192; /* runs past the end of the file */
	CHECK_EQ(parse(buf, len, &k, err), -EINVAL);
	CHECK_STR_CONTAINS(err, "truncated");
	make_elf(buf, 0x1000000);
	eh->e_machine = EM_AARCH64;
	CHECK_EQ(parse(buf, len, &k, err), -EINVAL);
	CHECK_STR_CONTAINS(err, "x86-64");
	make_elf(buf, 0x1000000);
	eh->e_phnum = 1000;
	CHECK_EQ(parse(buf, len, &k, err), -EINVAL);
	make_elf(buf, 0x1000000);
	ph->p_paddr = 0xfffffffffffff000ULL; /* wraps */
	CHECK_EQ(parse(buf, len, &k, err), -EINVAL);
	/* Program headers read in place must be aligned (found by fuzz_kernel). */
	make_elf(buf, 0x1000000);
	memmove(buf + 65, ph, sizeof(*ph));
	eh->e_phoff = 65;
	CHECK_EQ(parse(buf, len, &k, err), -EINVAL);
	CHECK_STR_CONTAINS(err, "program headers");
	/* bss only is a segment; an empty PT_LOAD, even at 4 GiB, is none. */
	make_elf(buf, 0x1000000);
	eh->e_phnum = 2;
	ph[1] = ph[0];
	ph[1].p_paddr = 0x2000000;
	ph[1].p_vaddr = 0xffffffff82000000ULL;
	ph[1].p_filesz = 0;
	CHECK_EQ(parse(buf, len, &k, err), 0);
	CHECK_EQ(k.nr_segs, 2);
	CHECK_EQ(k.segs[1].filesz, 0);
	CHECK_EQ(k.init_size, 0x1010000);
	make_elf(buf, 0x1000000);
	eh->e_phnum = 2;
	ph[1] = ph[0];
	ph[1].p_paddr = 1ULL << 32;
	ph[1].p_filesz = ph[1].p_memsz = 0;
	CHECK_EQ(parse(buf, len, &k, err), 0);
	CHECK_EQ(k.nr_segs, 1);
	CHECK_EQ(k.init_size, 0x10000);
	free(buf);
}

/* Damages make_elf()'s vmlinux and expects -EINVAL with a message containing want. */
static void expect_bad_elf(void (*damage)(Elf64_Ehdr *eh, Elf64_Phdr *ph), const char *want)
{
	uint8_t *buf = malloc(8192);
	struct x86_kernel k;
	char err[200];
	size_t len = make_elf(buf, 0x1000000);

	damage((Elf64_Ehdr *)buf, (Elf64_Phdr *)(buf + sizeof(Elf64_Ehdr)));
	CHECK_EQ(parse(buf, len, &k, err), -EINVAL);
	CHECK_STR_CONTAINS(err, want);
	free(buf);
}

/* A second PT_LOAD: a copy of the first, moved by delta bytes. */
static void second_seg(Elf64_Ehdr *eh, Elf64_Phdr *ph, int64_t delta)
{
	eh->e_phnum = 2;
	ph[1] = ph[0];
	ph[1].p_paddr += (uint64_t)delta;
	ph[1].p_vaddr += (uint64_t)delta;
}

static void overlap_same(Elf64_Ehdr *eh, Elf64_Phdr *ph) { second_seg(eh, ph, 0); }
static void overlap_tail(Elf64_Ehdr *eh, Elf64_Phdr *ph) { second_seg(eh, ph, 0xffff); }
static void overlap_head(Elf64_Ehdr *eh, Elf64_Phdr *ph) { second_seg(eh, ph, -0x1000); }
static void file_past_mem(Elf64_Ehdr *eh, Elf64_Phdr *ph) { (void)eh; ph->p_memsz = 100; }
static void below_1m(Elf64_Ehdr *eh, Elf64_Phdr *ph) { (void)eh; ph->p_paddr = 0x7000; }
static void past_4g(Elf64_Ehdr *eh, Elf64_Phdr *ph) { (void)eh; ph->p_paddr = 0xffff8000; }
static void memsz_wraps(Elf64_Ehdr *eh, Elf64_Phdr *ph) { (void)eh; ph->p_memsz = UINT64_MAX - 0x100; }
static void offset_wraps(Elf64_Ehdr *eh, Elf64_Phdr *ph) { (void)eh; ph->p_offset = UINT64_MAX - 10; }
static void entry_in_bss(Elf64_Ehdr *eh, Elf64_Phdr *ph) { (void)ph; eh->e_entry = 0x1008000; }
static void entry_in_vbss(Elf64_Ehdr *eh, Elf64_Phdr *ph) { (void)ph; eh->e_entry = 0xffffffff81008000ULL; }
static void no_load(Elf64_Ehdr *eh, Elf64_Phdr *ph) { (void)eh; ph->p_type = PT_NOTE; }
static void shared_object(Elf64_Ehdr *eh, Elf64_Phdr *ph) { (void)ph; eh->e_type = ET_DYN; }
static void elf32(Elf64_Ehdr *eh, Elf64_Phdr *ph) { (void)ph; eh->e_ident[EI_CLASS] = ELFCLASS32; }
static void big_endian(Elf64_Ehdr *eh, Elf64_Phdr *ph) { (void)ph; eh->e_ident[EI_DATA] = ELFDATA2MSB; }
static void phentsize(Elf64_Ehdr *eh, Elf64_Phdr *ph) { (void)ph; eh->e_phentsize = 32; }
static void phoff_past(Elf64_Ehdr *eh, Elf64_Phdr *ph) { (void)ph; eh->e_phoff = 8192; }
static void phoff_wraps(Elf64_Ehdr *eh, Elf64_Phdr *ph) { (void)ph; eh->e_phoff = UINT64_MAX - 7; }
static void too_many(Elf64_Ehdr *eh, Elf64_Phdr *ph)
{
	unsigned int i;

	eh->e_phnum = X86_KERNEL_MAX_SEGS + 1;
	for (i = 1; i < eh->e_phnum; i++) {
		ph[i] = ph[0];
		ph[i].p_paddr += 0x100000ULL * i;
		ph[i].p_vaddr += 0x100000ULL * i;
	}
}

/* Every way an ELF vmlinux can be damaged that the loader must refuse, each with its reason. */
static void test_bad_elf(void)
{
	expect_bad_elf(overlap_same, "overlap");
	expect_bad_elf(overlap_tail, "overlap");
	expect_bad_elf(overlap_head, "overlap");
	expect_bad_elf(file_past_mem, "only 100 in memory");
	expect_bad_elf(below_1m, "outside [1 MiB, 4 GiB)");
	expect_bad_elf(past_4g, "outside [1 MiB, 4 GiB)");
	expect_bad_elf(memsz_wraps, "outside");
	expect_bad_elf(offset_wraps, "truncated");
	expect_bad_elf(entry_in_bss, "entry point");
	expect_bad_elf(entry_in_vbss, "entry point");
	expect_bad_elf(no_load, "no loadable segment");
	expect_bad_elf(shared_object, "x86-64 executable");
	expect_bad_elf(elf32, "64-bit");
	expect_bad_elf(big_endian, "little-endian");
	expect_bad_elf(phentsize, "program headers");
	expect_bad_elf(phoff_past, "program headers");
	expect_bad_elf(phoff_wraps, "program headers");
	expect_bad_elf(too_many, "more than 16");
}

/*
 * The shape of Debian 12's vmlinux (6.1, extracted from its bzImage): four
 * PT_LOADs, the per-CPU one linked at virtual 0, a PT_NOTE among them, and
 * a physical e_entry at the first byte.  It loads at 16 MiB.
 */
static void test_debian_shaped_elf(void)
{
	static const struct { uint64_t vaddr, paddr, size; } segs[] = {
		{ 0xffffffff81000000ULL, 0x1000000, 0x18eacdc },
		{ 0xffffffff82a00000ULL, 0x2a00000, 0x644000 },
		{ 0, 0x3044000, 0x35000 },
		{ 0xffffffff83079000ULL, 0x3079000, 0x1987000 },
	};
	size_t len = 4096 + 0x20;
	uint8_t *buf = calloc(1, len);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	Elf64_Phdr *ph = (Elf64_Phdr *)(buf + sizeof(*eh));
	struct x86_kernel k;
	char err[200];
	unsigned int i;

	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_entry = 0x1000000;
	eh->e_phoff = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = 5;
	/* Only 16 bytes of each segment are in this file: the rest is zero fill (bss). */
	for (i = 0; i < 4; i++)
		ph[i] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = 4096, .p_vaddr = segs[i].vaddr,
				      .p_paddr = segs[i].paddr, .p_filesz = 16, .p_memsz = segs[i].size };
	ph[4] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = 4096, .p_filesz = 16 };
	CHECK_EQ(parse(buf, len, &k, err), 0);
	CHECK_EQ(k.nr_segs, 4);
	CHECK_EQ(k.entry, 0x1000000);
	CHECK_EQ(k.load_addr, 0x1000000);
	CHECK_EQ(k.init_size, 0x4a00000 - 0x1000000);
	CHECK_EQ(k.segs[2].paddr, 0x3044000);
	free(buf);
}

int main(void)
{
	test_good_bzimage();
	test_bad_bzimage();
	test_elf();
	test_bad_elf();
	test_debian_shaped_elf();
	return test_done("kernel");
}
