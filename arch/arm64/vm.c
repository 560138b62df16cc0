/* arm64: the arch interface, not yet implemented; it compiles so the generic/arch split stays honest. */
#include <errno.h>
#include <stdio.h>

#include "arch.h"

const char arch_name[] = "arm64";

/* RAM at 1 GiB, as on QEMU's virt machine; no hole above it. */
static const struct gmem_arch_map arm64_mem_map = {
	.ram_base = 0x40000000ULL,
	.hole_start = 0,
	.hole_end = 0,
};

const struct gmem_arch_map *arch_mem_map(void)
{
	return &arm64_mem_map;
}

int arch_vm_create(int kvm_fd, int vm_fd, unsigned int nr_cpus, bool legacy_timer,
		   struct arch_vm **out)
{
	(void)kvm_fd, (void)vm_fd, (void)nr_cpus, (void)legacy_timer, (void)out;
	return -EOPNOTSUPP;
}

void arch_vm_destroy(struct arch_vm *avm)
{
	(void)avm;
}

int arch_vm_irq_line(struct arch_vm *avm, unsigned int irq, int level)
{
	(void)avm, (void)irq, (void)level;
	return -EOPNOTSUPP;
}

int arch_vcpu_init(struct arch_vm *avm, int vcpu_fd, unsigned int index)
{
	(void)avm, (void)vcpu_fd, (void)index;
	return -EOPNOTSUPP;
}

int arch_fw_prepare(struct gmem *gm, struct arch_fw_boot *boot)
{
	(void)gm, (void)boot;
	return -EOPNOTSUPP;
}

int arch_fw_vcpu_entry(int vcpu_fd, const struct arch_fw_boot *boot, unsigned int index,
		       uint64_t stack_top)
{
	(void)vcpu_fd, (void)boot, (void)index, (void)stack_top;
	return -EOPNOTSUPP;
}

int arch_mem_probe_prepare(struct gmem *gm, int vcpu_fd, struct arch_mem_probe *p)
{
	(void)gm, (void)vcpu_fd, (void)p;
	return -EOPNOTSUPP;
}

void arch_vcpu_dump(int vcpu_fd, char *buf, size_t len)
{
	(void)vcpu_fd;
	snprintf(buf, len, "(arm64 register dump not implemented)");
}

int arch_board_create(struct arch_vm *avm, struct bus *bus, const struct arch_board_ops *ops,
		      struct arch_board **out)
{
	(void)avm, (void)bus, (void)ops, (void)out;
	return -EOPNOTSUPP;
}

void arch_board_destroy(struct arch_board *b)
{
	(void)b;
}

size_t arch_board_console_rx(struct arch_board *b, const uint8_t *buf, size_t len)
{
	(void)b, (void)buf, (void)len;
	return 0;
}

void arch_board_console_tx_ready(struct arch_board *b)
{
	(void)b;
}

uint64_t arch_board_console_tx_dropped(struct arch_board *b)
{
	(void)b;
	return 0;
}

int arch_linux_check(const uint8_t *kernel, size_t size, char *err, size_t errlen)
{
	(void)kernel, (void)size;
	snprintf(err, errlen, "booting Linux is not implemented on arm64 yet");
	return -EOPNOTSUPP;
}

int arch_linux_load(struct gmem *gm, const struct arch_linux_boot *b, unsigned int nr_cpus,
		    struct arch_boot_state *st, char *err, size_t errlen)
{
	(void)gm, (void)b, (void)nr_cpus, (void)st;
	snprintf(err, errlen, "booting Linux is not implemented on arm64 yet");
	return -EOPNOTSUPP;
}

int arch_linux_vcpu_entry(int vcpu_fd, const struct arch_boot_state *st, unsigned int index)
{
	(void)vcpu_fd, (void)st, (void)index;
	return -EOPNOTSUPP;
}

int arch_acpi_write(struct gmem *gm, unsigned int nr_cpus, const struct arch_mmio_dev *mmio_devs,
		    unsigned int nr_mmio_devs, bool pci, uint64_t *rsdp)
{
	(void)gm, (void)nr_cpus, (void)mmio_devs, (void)nr_mmio_devs, (void)pci, (void)rsdp;
	return -EOPNOTSUPP;
}

unsigned int arch_irq_default_routes(struct kvm_irq_routing_entry *e, unsigned int max)
{
	(void)e, (void)max;
	return 0; /* the GIC will have its own */
}

struct pci_host *arch_board_pci(struct arch_board *b)
{
	(void)b;
	return NULL;
}

int arch_pci_window(uint64_t *base, uint64_t *size)
{
	(void)base, (void)size;
	return -EOPNOTSUPP; /* arm64 will have an ECAM host in its device tree */
}

unsigned int arch_pci_intx_gsi(unsigned int slot)
{
	(void)slot;
	return 0; /* no PCI host yet (arch_pci_window) */
}

unsigned int arch_coalesced_zones(struct arch_io_zone *z, unsigned int max)
{
	(void)z;
	(void)max;
	return 0;
}

int arch_unused_ram(uint64_t *gpa, uint64_t *len)
{
	(void)gpa, (void)len;
	return -EOPNOTSUPP;
}

int arch_mmio_slot(unsigned int n, struct arch_mmio_dev *d)
{
	(void)n, (void)d;
	return -EOPNOTSUPP; /* arm64 will declare virtio-mmio in its device tree */
}

void arch_e820_build(const struct gmem_layout *l, struct arch_e820 *t)
{
	(void)l;
	t->nr = 0;
}

int arch_hypercall_probe_prepare(struct gmem *gm, int vcpu_fd, uint32_t nr, uint32_t a0,
				 uint32_t a1, uint32_t a2)
{
	(void)gm, (void)vcpu_fd, (void)nr, (void)a0, (void)a1, (void)a2;
	return -EOPNOTSUPP;
}
