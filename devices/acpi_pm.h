/* ACPI fixed-hardware PM1 registers: the guest's way to power off (S5). */
#ifndef VEIL_ACPI_PM_H
#define VEIL_ACPI_PM_H

#include <stdint.h>

#include "bus.h"

/* Layout: PM1a_EVT at offset 0 (status, enable; 2 bytes each), PM1a_CNT at offset 4. */
#define ACPI_PM_EVT_OFFSET 0
#define ACPI_PM_EVT_LEN 4
#define ACPI_PM_CNT_OFFSET 4
#define ACPI_PM_CNT_LEN 2
#define ACPI_PM_SIZE 6
#define ACPI_PM_S5_SLP_TYP 5 /* the value the DSDT's \_S5 package gives */

struct acpi_pm;

struct acpi_pm_config {
	void (*poweroff)(void *opaque);
	void *opaque;
};

int acpi_pm_create(const struct acpi_pm_config *cfg, struct acpi_pm **out) __must_check;
void acpi_pm_destroy(struct acpi_pm *pm);

extern const struct bus_device_ops acpi_pm_bus_ops;

#endif
