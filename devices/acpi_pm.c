/* ACPI PM1 event and control registers; SLP_EN with SLP_TYP = S5 powers the VM off. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "acpi_pm.h"

#define PM1_CNT_SCI_EN 0x0001
#define PM1_CNT_SLP_TYP_SHIFT 10
#define PM1_CNT_SLP_EN 0x2000

struct acpi_pm {
	pthread_mutex_t lock;
	struct acpi_pm_config cfg;
	uint16_t sts, en, cnt;
};

int acpi_pm_create(const struct acpi_pm_config *cfg, struct acpi_pm **out)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));

	if (!pm)
		return -ENOMEM;
	pthread_mutex_init(&pm->lock, NULL);
	pm->cfg = *cfg;
	/* No SMI_CMD in the FADT: the platform is in ACPI mode from the start. */
	pm->cnt = PM1_CNT_SCI_EN;
	*out = pm;
	return 0;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	if (!pm)
		return;
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

/* The PM1 registers as one little-endian 6-byte file: sts, en, cnt. */
static void pm_regs(const struct acpi_pm *pm, uint8_t regs[ACPI_PM_SIZE])
{
	regs[0] = (uint8_t)pm->sts;
	regs[1] = (uint8_t)(pm->sts >> 8);
	regs[2] = (uint8_t)pm->en;
	regs[3] = (uint8_t)(pm->en >> 8);
	regs[4] = (uint8_t)pm->cnt;
	regs[5] = (uint8_t)(pm->cnt >> 8);
}

static int pm_bus_read(void *opaque, uint64_t offset, void *data, unsigned int len)
{
	struct acpi_pm *pm = opaque;
	uint8_t regs[ACPI_PM_SIZE];

	if (len > 4 || offset + len > ACPI_PM_SIZE)
		return -EINVAL;
	pthread_mutex_lock(&pm->lock);
	pm_regs(pm, regs);
	pthread_mutex_unlock(&pm->lock);
	memcpy(data, regs + offset, len);
	return 0;
}

static void pm_write_byte(struct acpi_pm *pm, unsigned int reg, uint8_t v, bool *sleep)
{
	unsigned int shift = (reg & 1) * 8;
	uint16_t mask = (uint16_t)(0xff << shift), val = (uint16_t)(v << shift);

	switch (reg / 2) {
	case 0: /* status: write 1 to clear */
		pm->sts &= (uint16_t)~val;
		break;
	case 1:
		pm->en = (uint16_t)((pm->en & ~mask) | val);
		break;
	default:
		pm->cnt = (uint16_t)((pm->cnt & ~mask) | val) | PM1_CNT_SCI_EN;
		if (pm->cnt & PM1_CNT_SLP_EN) {
			*sleep = ((pm->cnt >> PM1_CNT_SLP_TYP_SHIFT) & 7) == ACPI_PM_S5_SLP_TYP;
			pm->cnt &= (uint16_t)~PM1_CNT_SLP_EN; /* SLP_EN always reads 0 */
		}
		break;
	}
}

static int pm_bus_write(void *opaque, uint64_t offset, const void *data, unsigned int len)
{
	struct acpi_pm *pm = opaque;
	const uint8_t *b = data;
	bool poweroff = false;
	unsigned int i;

	if (len > 4 || offset + len > ACPI_PM_SIZE)
		return -EINVAL;
	pthread_mutex_lock(&pm->lock);
	for (i = 0; i < len; i++)
		pm_write_byte(pm, (unsigned int)offset + i, b[i], &poweroff);
	pthread_mutex_unlock(&pm->lock);
	if (poweroff)
		pm->cfg.poweroff(pm->cfg.opaque);
	return 0;
}

const struct bus_device_ops acpi_pm_bus_ops = {
	.read = pm_bus_read,
	.write = pm_bus_write,
};
