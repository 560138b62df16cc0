/* The contract between veil and its firmware payloads: entry state, boot info, ports. */
#ifndef VEIL_BOOT_H
#define VEIL_BOOT_H

#ifdef __ASSEMBLER__
#define VEIL_ULL(x) x
#else
#include <stdint.h>
#define VEIL_ULL(x) x##ULL
#endif

#if defined(__aarch64__)
/*
 * arm64: vCPU 0 enters the flat image at VEIL_FW_LOAD_GPA at EL1h, MMU off,
 * DAIF masked, with x0 = 0 (its index), x1 = GPA of struct veil_boot_info,
 * x2 = its stack top; the others are powered off until the firmware starts
 * them with PSCI CPU_ON (context_id = their index), and their stacks lie
 * below vCPU 0's, VEIL_FW_STACK_SIZE each.  veil writes an identity map
 * (4 KiB granule, 39-bit VA, level-1 1 GiB blocks: Device-nGnRnE below RAM,
 * Normal write-back from RAM to boot_info.mapped_top) at VEIL_FW_PGTABLE_GPA
 * for the firmware to load into TTBR0_EL1 with VEIL_FW_MAIR.  The firmware's
 * registers are MMIO (32-bit accesses) below RAM.
 */
#define VEIL_FW_LOAD_GPA VEIL_ULL(0x40100000)
#define VEIL_BOOT_INFO_GPA VEIL_ULL(0x40003000)
#define VEIL_FW_PGTABLE_GPA VEIL_ULL(0x40001000)
#define VEIL_FW_MAIR VEIL_ULL(0xff00) /* attr 0: Device-nGnRnE, attr 1: Normal WB RW-allocate */
#define VEIL_FW_STACK_SIZE VEIL_ULL(0x4000)

#define VEIL_FW_REGS_MMIO 1
#define VEIL_PORT_UART 0x09000000
#define VEIL_PORT_DEBUG_EXIT 0x0b000000 /* 32-bit write: the VM ends with this status */
#define VEIL_PORT_CONVERT 0x0b000040    /* see veil_boot_info.conv_port */
#define VEIL_PORT_SERVICE 0x0b000048    /* conversions firmware: host-side actions */
#else
/*
 * x86: every vCPU enters the flat image at VEIL_FW_LOAD_GPA in 64-bit mode with
 * paging on (GPAs identity-mapped below boot_info.mapped_top), interrupts off,
 * rdi = vCPU index, rsi = GPA of struct veil_boot_info, rsp = its own stack.
 * The firmware's registers are I/O ports.
 */
#define VEIL_FW_LOAD_GPA 0x100000ULL
#define VEIL_BOOT_INFO_GPA 0x3000ULL
#define VEIL_FW_STACK_SIZE 0x4000ULL

#define VEIL_FW_REGS_MMIO 0
#define VEIL_PORT_UART 0x3f8
#define VEIL_PORT_DEBUG_EXIT 0x501 /* 32-bit write: the VM ends with this status */
#define VEIL_PORT_CONVERT 0x540    /* see veil_boot_info.conv_port */
#define VEIL_PORT_SERVICE 0x548    /* conversions firmware: host-side actions, see veil_svc_req */
#endif

/* pKVM's guest hypercalls (SMCCC vendor-hypervisor service), which the arm64 firmware issues. */
#define VEIL_SMCCC_HYP_MEMINFO 0xC6000002
#define VEIL_SMCCC_MEM_SHARE 0xC6000003
#define VEIL_SMCCC_MEM_UNSHARE 0xC6000004

#ifndef __ASSEMBLER__

#define VEIL_BOOT_MAGIC 0x6c696576u /* "veil" */
#define VEIL_BOOT_VERSION 2
#define VEIL_MAX_PROBES 32

struct veil_boot_info {
	uint32_t magic;
	uint32_t version;
	uint32_t nr_cpus;
	uint32_t nr_probes;
	uint64_t seed;
	uint64_t mapped_top;   /* GPAs below this are mapped, RAM or not */
	uint64_t scratch_base; /* RAM the firmware may use freely, page aligned */
	uint64_t scratch_size;
	/* Qwords veil wrote through its guest_memfd mapping before boot. */
	uint64_t probes[VEIL_MAX_PROBES];
	/*
	 * convert-stress and conversions only; zero otherwise.  convert-stress:
	 * ctl_gpa holds struct veil_stress_ctl.  conversions: ctl_gpa holds one
	 * struct veil_svc_req per vCPU, pool_gpa is 2 MiB aligned.
	 */
	uint64_t ctl_gpa;     /* never converted */
	uint64_t pool_gpa;    /* pages the vCPUs convert: own pages first, then the shared pool */
	uint32_t pool_pages;
	uint32_t own_pages;   /* per vCPU */
	uint32_t semantics;   /* VEIL_CONTENT_*: what a conversion does to contents */
	/*
	 * 0: convert by hypercall (x86: KVM_HC_MAP_GPA_RANGE; arm64: MEM_SHARE
	 * and MEM_UNSHARE).  Otherwise the register (x86: port) to use where
	 * hypercalls do not reach veil: fill the vCPU's req_* fields, write the
	 * vCPU index to it (32 bits), and read req_ret.
	 */
	uint32_t conv_port;
	/* conversions: check one qword in check_stride (1: all); for slow, emulating KVMs. */
	uint32_t check_stride;
};

#define VEIL_CONTENT_PRESERVED 0
#define VEIL_CONTENT_ZEROED 1
#define VEIL_STRESS_MAX_CPUS 63

/* Per-vCPU counters the stress firmware keeps in the control page; veil reads them. */
struct veil_stress_cpu {
	uint64_t iterations;
	uint64_t conversions;
	uint64_t hc_errors;     /* hypercalls veil answered with an error */
	uint64_t verify_errors; /* contents not as the semantics promise: a violation */
	uint64_t done;
	uint64_t req_gpa;       /* conversion by port: MAP_GPA_RANGE's arguments */
	uint64_t req_args;      /* npages | attrs << 32 */
	uint64_t req_ret;       /* what the hypercall would have returned */
};

struct veil_stress_ctl {
	uint64_t stop; /* veil sets it when the time is up */
	uint64_t pad[7];
	struct veil_stress_cpu cpu[VEIL_STRESS_MAX_CPUS];
};

/*
 * The conversions firmware asks veil to act on guest memory as the host, the
 * way the kernel's private_mem_conversions_test has its host side act
 * between guest steps: fill the vCPU's request, write the vCPU index to
 * VEIL_PORT_SERVICE (32 bits), read ret (0 or -errno; VEIL_SVC_HOST_CHECK
 * answers 1 on a mismatch, with its offset in out).
 */
enum veil_svc_op {
	VEIL_SVC_HOST_WRITE = 1, /* gmem_write: len bytes of the byte arg at gpa */
	VEIL_SVC_HOST_CHECK,     /* gmem_read: do len bytes at gpa all hold the byte arg & 0xff?
				  * arg >> 8: check only the qwords the guest samples (stride) */
	VEIL_SVC_PUNCH,          /* gmem_discard(gpa, len) */
	VEIL_SVC_ALLOCATE,       /* gmem_allocate(gpa, len): fallocate the backing */
	VEIL_SVC_MAP_GPA_RANGE,  /* KVM_HC_MAP_GPA_RANGE(gpa, len = npages, arg = attrs) */
};

struct veil_svc_req {
	uint64_t op;
	uint64_t gpa;
	uint64_t len;
	uint64_t arg;
	int64_t ret;
	uint64_t out;
};

/* splitmix64's finalizer: cheap, and every bit of the input reaches the output. */
static inline uint64_t veil_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The value veil stores at probe GPA gpa. */
static inline uint64_t veil_probe_value(uint64_t seed, uint64_t gpa)
{
	return veil_mix64(seed ^ gpa);
}

/* Word i of the page that vCPU cpu writes at scratch_base + cpu * 4096 for veil to check. */
static inline uint64_t veil_result_value(uint64_t seed, uint32_t cpu, uint32_t i)
{
	return veil_mix64(seed + 0x9e3779b97f4a7c15ULL * (((uint64_t)cpu << 16) | i));
}
#endif /* !__ASSEMBLER__ */

#endif
