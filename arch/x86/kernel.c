/* x86 kernel images: a bzImage's setup header or an ELF vmlinux, validated field by field. */
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kernel.h"

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

__attribute__((format(printf, 3, 4))) static int bad(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int bz_header(const uint8_t *img, size_t len, struct x86_kernel *k, char *err, size_t el)
{
	k->version = get16(img + BP_VERSION);
	if (k->version < 0x020c)
		return bad(err, el, "boot protocol %u.%02u is too old: veil needs 2.12 or later",
			   k->version >> 8, k->version & 0xff);
	k->xloadflags = get16(img + BP_XLOADFLAGS);
	if (!(k->xloadflags & XLF_KERNEL_64))
		return bad(err, el, "the kernel has no 64-bit entry point (XLF_KERNEL_64 is clear)");
	if (!(img[BP_LOADFLAGS] & LOADFLAG_LOADED_HIGH))
		return bad(err, el, "a zImage (loaded low) is not supported; use a bzImage");
	/* The header ends at 0x202 + the jump's offset byte. */
	k->hdr_len = 0x202 + img[BP_JUMP + 1] - BP_SETUP_SECTS;
	if (k->hdr_len + BP_SETUP_SECTS > BP_HDR_END_MAX)
		k->hdr_len = BP_HDR_END_MAX - BP_SETUP_SECTS;
	k->initrd_addr_max = get32(img + BP_INITRD_ADDR_MAX);
	k->cmdline_size = get32(img + BP_CMDLINE_SIZE);
	(void)len;
	return 0;
}

static int bz_placement(const uint8_t *img, struct x86_kernel *k, uint64_t payload, char *err,
			size_t el)
{
	uint32_t align = get32(img + BP_KERNEL_ALIGNMENT);
	uint64_t pref = get64(img + BP_PREF_ADDRESS);

	if (img[BP_RELOCATABLE]) {
		if (align < 0x1000 || (align & (align - 1)))
			return bad(err, el, "kernel_alignment 0x%x is not a power of two >= 4 KiB", align);
		k->load_addr = ALIGN_UP(pref ? pref : 0x1000000ULL, (uint64_t)align);
	} else {
		k->load_addr = pref ? pref : get32(img + BP_CODE32_START);
	}
	if (k->load_addr < 0x100000 || k->load_addr >= (1ULL << 32))
		return bad(err, el, "load address 0x%llx is outside [1 MiB, 4 GiB)",
			   (unsigned long long)k->load_addr);
	k->init_size = get32(img + BP_INIT_SIZE);
	if (k->init_size < payload)
		return bad(err, el, "init_size %llu is smaller than the %llu-byte kernel",
			   (unsigned long long)k->init_size, (unsigned long long)payload);
	k->entry = k->load_addr + 0x200; /* the 64-bit entry, protocol 2.12+ */
	return 0;
}

static int parse_bzimage(const uint8_t *img, size_t len, struct x86_kernel *k, char *err, size_t el)
{
	size_t setup_sects = img[BP_SETUP_SECTS] ? img[BP_SETUP_SECTS] : 4;
	size_t setup = (setup_sects + 1) * 512;
	uint64_t syssize = (uint64_t)get32(img + BP_SYSSIZE) * 16;
	int ret;

	ret = bz_header(img, len, k, err, el);
	if (ret)
		return ret;
	if (setup >= len)
		return bad(err, el, "truncated: the setup code is %zu bytes but the file only %zu",
			   setup, len);
	if (syssize == 0 || syssize > len - setup)
		return bad(err, el, "truncated: the header promises %llu bytes of kernel after the "
			   "setup code, the file has %zu", (unsigned long long)syssize, len - setup);
	k->kind = X86_KERNEL_BZIMAGE;
	k->nr_segs = 1;
	k->segs[0].data = img + setup;
	k->segs[0].filesz = k->segs[0].memsz = len - setup;
	ret = bz_placement(img, k, len - setup, err, el);
	k->segs[0].paddr = k->load_addr;
	return ret;
}

static int elf_segment(const uint8_t *img, size_t len, const Elf64_Phdr *ph, struct x86_kernel *k,
		       char *err, size_t el)
{
	uint64_t end;

	if (ph->p_offset > len || ph->p_filesz > len - ph->p_offset)
		return bad(err, el, "truncated: an ELF segment runs past the end of the file");
	if (ph->p_filesz > ph->p_memsz)
		return bad(err, el, "ELF segment at 0x%llx has %llu bytes in the file but only %llu "
			   "in memory", (unsigned long long)ph->p_paddr,
			   (unsigned long long)ph->p_filesz, (unsigned long long)ph->p_memsz);
	if (__builtin_add_overflow(ph->p_paddr, ph->p_memsz, &end) || ph->p_paddr < 0x100000 ||
	    end > (1ULL << 32))
		return bad(err, el, "ELF segment at 0x%llx (%llu bytes) is outside [1 MiB, 4 GiB)",
			   (unsigned long long)ph->p_paddr, (unsigned long long)ph->p_memsz);
	if (k->nr_segs == X86_KERNEL_MAX_SEGS)
		return bad(err, el, "more than %d loadable ELF segments", X86_KERNEL_MAX_SEGS);
	/* Two segments over the same bytes: which one the kernel gets would be the loader's order. */
	for (unsigned int i = 0; i < k->nr_segs; i++) {
		const struct x86_kernel_seg *o = &k->segs[i];

		if (ph->p_paddr < o->paddr + o->memsz && o->paddr < end)
			return bad(err, el, "ELF segments at 0x%llx and 0x%llx overlap",
				   (unsigned long long)o->paddr, (unsigned long long)ph->p_paddr);
	}
	k->segs[k->nr_segs++] = (struct x86_kernel_seg){
		ph->p_paddr, ph->p_filesz, ph->p_memsz, img + ph->p_offset,
	};
	return 0;
}

/* e_entry may be virtual (startup_64) or physical (phys_startup_64): find its segment. */
static int elf_entry(const Elf64_Ehdr *eh, const Elf64_Phdr *ph, struct x86_kernel *k, char *err,
		     size_t el)
{
	unsigned int i;

	/*
	 * Only the bytes the file gives: an entry in a segment's zero-filled
	 * tail would run zeros.  p_vaddr + p_filesz may wrap (it is not the
	 * address anything is loaded at), so compare offsets instead.
	 */
	for (i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD || !ph[i].p_memsz)
			continue;
		if (eh->e_entry - ph[i].p_paddr < ph[i].p_filesz) {
			k->entry = eh->e_entry;
			return 0;
		}
		if (eh->e_entry - ph[i].p_vaddr < ph[i].p_filesz) {
			k->entry = eh->e_entry - ph[i].p_vaddr + ph[i].p_paddr;
			return 0;
		}
	}
	return bad(err, el, "the ELF entry point 0x%llx is in no loadable segment's file contents",
		   (unsigned long long)eh->e_entry);
}

static int parse_elf(const uint8_t *img, size_t len, struct x86_kernel *k, char *err, size_t el)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
	const Elf64_Phdr *ph;
	uint64_t lo = UINT64_MAX, hi = 0;
	unsigned int i;
	int ret;

	if (len < sizeof(*eh) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64 ||
	    eh->e_type != ET_EXEC)
		return bad(err, el, "an ELF file, but not a 64-bit little-endian x86-64 executable");
	/* Read in place, so they must be aligned too (a misaligned e_phoff: fuzz_kernel). */
	if (eh->e_phentsize != sizeof(*ph) || eh->e_phoff > len ||
	    eh->e_phoff % _Alignof(Elf64_Phdr) ||
	    (uint64_t)eh->e_phnum * sizeof(*ph) > len - eh->e_phoff)
		return bad(err, el, "truncated or damaged ELF program headers");
	ph = (const Elf64_Phdr *)(img + eh->e_phoff);
	k->kind = X86_KERNEL_ELF;
	for (i = 0; i < eh->e_phnum; i++) {
		/* An empty PT_LOAD loads nothing; counted, it could stretch init_size to 4 GiB. */
		if (ph[i].p_type != PT_LOAD || !ph[i].p_memsz)
			continue;
		ret = elf_segment(img, len, &ph[i], k, err, el);
		if (ret)
			return ret;
		lo = ph[i].p_paddr < lo ? ph[i].p_paddr : lo;
		hi = ph[i].p_paddr + ph[i].p_memsz > hi ? ph[i].p_paddr + ph[i].p_memsz : hi;
	}
	if (!k->nr_segs)
		return bad(err, el, "the ELF file has no loadable segment");
	k->load_addr = lo;
	k->init_size = hi - lo;
	k->initrd_addr_max = 0x7fffffff;
	k->cmdline_size = 2047;
	return elf_entry(eh, ph, k, err, el);
}

int x86_kernel_parse(const uint8_t *img, size_t len, struct x86_kernel *k, char *err, size_t errlen)
{
	memset(k, 0, sizeof(*k));
	if (len >= SELFMAG && memcmp(img, ELFMAG, SELFMAG) == 0)
		return parse_elf(img, len, k, err, errlen);
	if (len < BP_HDR_END_MAX)
		return bad(err, errlen, "%zu bytes is too short for a kernel image", len);
	if (get16(img + BP_BOOT_FLAG) != 0xaa55 || get32(img + BP_HEADER) != HDRS_MAGIC)
		return bad(err, errlen, "not a Linux kernel: no bzImage setup header (HdrS) and no ELF magic");
	return parse_bzimage(img, len, k, err, errlen);
}
