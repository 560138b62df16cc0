/* unit: the PC board's small devices: CMOS RTC, ACPI PM1 (S5 poweroff), i8042 and 0xcf9 resets. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "acpi_pm.h"
#include "pc_reset.h"
#include "rtc_cmos.h"
#include "test.h"

static uint8_t rd(const struct bus_device_ops *ops, void *dev, uint64_t off)
{
	uint8_t v = 0xaa;

	CHECK_EQ(ops->read(dev, off, &v, 1), 0);
	return v;
}

static void wr(const struct bus_device_ops *ops, void *dev, uint64_t off, uint8_t v)
{
	CHECK_EQ(ops->write(dev, off, &v, 1), 0);
}

/* 2026-11-22 01:02:03 UTC, a Sunday. */
static time_t fixed_now(void)
{
	return 1795309323;
}

static uint8_t rtc_reg(struct rtc_cmos *rtc, uint8_t reg)
{
	wr(&rtc_cmos_bus_ops, rtc, 0, reg);
	return rd(&rtc_cmos_bus_ops, rtc, 1);
}

static void test_rtc(void)
{
	struct rtc_cmos *rtc;
	uint16_t two = 0;

	CHECK_EQ(rtc_cmos_create(fixed_now, &rtc), 0);
	CHECK_EQ(rtc_reg(rtc, 0x00), 0x03); /* seconds, BCD */
	CHECK_EQ(rtc_reg(rtc, 0x02), 0x02);
	CHECK_EQ(rtc_reg(rtc, 0x04), 0x01);
	CHECK_EQ(rtc_reg(rtc, 0x06), 0x01); /* Sunday */
	CHECK_EQ(rtc_reg(rtc, 0x07), 0x22);
	CHECK_EQ(rtc_reg(rtc, 0x08), 0x11);
	CHECK_EQ(rtc_reg(rtc, 0x09), 0x26);
	CHECK_EQ(rtc_reg(rtc, 0x32), 0x20); /* century */
	CHECK_EQ(rtc_reg(rtc, 0x0a) & 0x80, 0); /* no update in progress */
	CHECK_EQ(rtc_reg(rtc, 0x0d), 0x80);    /* battery good */
	/* Binary mode. */
	wr(&rtc_cmos_bus_ops, rtc, 0, 0x0b);
	wr(&rtc_cmos_bus_ops, rtc, 1, 0x06);
	CHECK_EQ(rtc_reg(rtc, 0x07), 22);
	/* NVRAM keeps what is written; the clock ignores writes; bit 7 of the index is NMI. */
	wr(&rtc_cmos_bus_ops, rtc, 0, 0x80 | 0x40);
	wr(&rtc_cmos_bus_ops, rtc, 1, 0x5a);
	CHECK_EQ(rtc_reg(rtc, 0x40), 0x5a);
	wr(&rtc_cmos_bus_ops, rtc, 0, 0x00);
	wr(&rtc_cmos_bus_ops, rtc, 1, 0x59);
	CHECK_EQ(rtc_reg(rtc, 0x00), 3);
	CHECK_EQ(rtc_cmos_bus_ops.read(rtc, 1, &two, 2), -EINVAL);
	rtc_cmos_destroy(rtc);
}

static int poweroffs;

static void count_poweroff(void *opaque)
{
	(void)opaque;
	poweroffs++;
}

static void test_acpi_pm(void)
{
	struct acpi_pm_config cfg = { .poweroff = count_poweroff };
	struct acpi_pm *pm;
	uint16_t cnt;

	CHECK_EQ(acpi_pm_create(&cfg, &pm), 0);
	CHECK_EQ(acpi_pm_bus_ops.read(pm, ACPI_PM_CNT_OFFSET, &cnt, 2), 0);
	CHECK_EQ(cnt & 1, 1); /* SCI_EN: ACPI mode from the start */
	/* S5 without SLP_EN, and SLP_EN with another sleep type: no poweroff. */
	cnt = 5 << 10;
	CHECK_EQ(acpi_pm_bus_ops.write(pm, ACPI_PM_CNT_OFFSET, &cnt, 2), 0);
	cnt = (3 << 10) | 0x2000;
	CHECK_EQ(acpi_pm_bus_ops.write(pm, ACPI_PM_CNT_OFFSET, &cnt, 2), 0);
	CHECK_EQ(poweroffs, 0);
	/* What Linux writes for S5: SLP_TYP 5 with SLP_EN. */
	cnt = (5 << 10) | 0x2000;
	CHECK_EQ(acpi_pm_bus_ops.write(pm, ACPI_PM_CNT_OFFSET, &cnt, 2), 0);
	CHECK_EQ(poweroffs, 1);
	CHECK_EQ(acpi_pm_bus_ops.read(pm, ACPI_PM_CNT_OFFSET, &cnt, 2), 0);
	CHECK_EQ(cnt & 0x2000, 0); /* SLP_EN reads as 0 */
	/* The enable register keeps what is written; out of range is refused. */
	cnt = 0x0120;
	CHECK_EQ(acpi_pm_bus_ops.write(pm, 2, &cnt, 2), 0);
	cnt = 0;
	CHECK_EQ(acpi_pm_bus_ops.read(pm, 2, &cnt, 2), 0);
	CHECK_EQ(cnt, 0x0120);
	CHECK_EQ(acpi_pm_bus_ops.read(pm, 5, &cnt, 2), -EINVAL);
	acpi_pm_destroy(pm);
}

static char last_reset[64];

static void note_reset(void *opaque, const char *how)
{
	(void)opaque;
	snprintf(last_reset, sizeof(last_reset), "%s", how);
}

static void test_resets(void)
{
	struct pc_reset r = { .reset = note_reset };

	CHECK_EQ(rd(&i8042_bus_ops, &r, 0), 0);
	CHECK_EQ(rd(&i8042_cmd_bus_ops, &r, 0), 0); /* status: nothing to read, room to write */
	wr(&i8042_cmd_bus_ops, &r, 0, 0xad); /* another command: no reset */
	wr(&i8042_bus_ops, &r, 0, 0xfe);     /* 0xfe on the data port is data, not a reset */
	CHECK_EQ(last_reset[0], 0);
	wr(&i8042_cmd_bus_ops, &r, 0, 0xfe);
	CHECK_STR_CONTAINS(last_reset, "i8042");
	last_reset[0] = 0;
	wr(&cf9_bus_ops, &r, 0, 0x02); /* no RST_CPU */
	CHECK_EQ(last_reset[0], 0);
	wr(&cf9_bus_ops, &r, 0, 0x06);
	CHECK_STR_CONTAINS(last_reset, "0xcf9");
}

int main(void)
{
	test_rtc();
	test_acpi_pm();
	test_resets();
	return test_done("board");
}
