/* x86 kernel images: the bzImage setup header (boot protocol 2.12+) and ELF vmlinux, parsed and checked. */
#ifndef VEIL_X86_KERNEL_H
#define VEIL_X86_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

#define X86_KERNEL_MAX_SEGS 16

/* Offsets in the bzImage file and in boot_params (the setup header sits at 0x1f1 in both). */
#define BP_SETUP_SECTS 0x1f1
#define BP_SYSSIZE 0x1f4
#define BP_VID_MODE 0x1fa
#define BP_BOOT_FLAG 0x1fe
#define BP_JUMP 0x200
#define BP_HEADER 0x202
#define BP_VERSION 0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_LOADFLAGS 0x211
#define BP_CODE32_START 0x214
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_HEAP_END_PTR 0x224
#define BP_CMD_LINE_PTR 0x228
#define BP_INITRD_ADDR_MAX 0x22c
#define BP_KERNEL_ALIGNMENT 0x230
#define BP_RELOCATABLE 0x234
#define BP_XLOADFLAGS 0x236
#define BP_CMDLINE_SIZE 0x238
#define BP_PREF_ADDRESS 0x258
#define BP_INIT_SIZE 0x260
#define BP_HDR_END_MAX 0x290
/* boot_params outside the setup header. */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128
#define BP_SIZE 4096

#define HDRS_MAGIC 0x53726448 /* "HdrS" */
#define LOADFLAG_LOADED_HIGH 0x01
#define LOADFLAG_CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x0001
#define XLF_CAN_BE_LOADED_ABOVE_4G 0x0002

enum x86_kernel_kind { X86_KERNEL_BZIMAGE, X86_KERNEL_ELF };

struct x86_kernel_seg {
	uint64_t paddr;
	uint64_t filesz;
	uint64_t memsz;
	const uint8_t *data;
};

struct x86_kernel {
	enum x86_kernel_kind kind;
	uint16_t version;         /* boot protocol; 0 for ELF */
	size_t hdr_len;           /* setup header bytes from 0x1f1 to copy into boot_params */
	uint64_t load_addr;       /* first byte the kernel occupies */
	uint64_t init_size;       /* bytes it needs from load_addr while it starts */
	uint64_t entry;           /* the 64-bit entry point */
	uint32_t initrd_addr_max; /* last byte an initrd may occupy */
	uint32_t cmdline_size;    /* longest command line, without its NUL */
	uint16_t xloadflags;
	unsigned int nr_segs;
	struct x86_kernel_seg segs[X86_KERNEL_MAX_SEGS];
};

/* Checks and describes an image; -EINVAL with a sentence in err when it is damaged or foreign. */
int x86_kernel_parse(const uint8_t *img, size_t len, struct x86_kernel *k, char *err,
		     size_t errlen) __must_check;

#endif
