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

static time_t var_now_value;

static time_t var_now(void)
{
	return var_now_value;
}

/* The RTC's own UTC arithmetic agrees with gmtime_r() across leap days and centuries. */
static void test_rtc_calendar(void)
{
	static const time_t when[] = {
		0, 86399, 86400, 951782400 /* 2000-02-29 */, 951868800 /* 2000-03-01 */,
		1078012800 /* 2004-02-29 */, 1795309323, 4107542399 /* 2100-02-28 23:59:59 */,
		4107542400 /* 2100-03-01: no leap day */, 4102444800 /* 2100-01-01 */,
	};
	struct rtc_cmos *rtc;
	uint64_t x = 88172645463325252ULL;

	CHECK_EQ(rtc_cmos_create(var_now, &rtc), 0);
	wr(&rtc_cmos_bus_ops, rtc, 0, 0x0b);
	wr(&rtc_cmos_bus_ops, rtc, 1, 0x06); /* binary, 24-hour */
	for (size_t i = 0; i < ARRAY_SIZE(when) + 2000; i++) {
		struct tm tm;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		var_now_value = i < ARRAY_SIZE(when) ? when[i] : (time_t)(x % 4200000000ULL);
		gmtime_r(&var_now_value, &tm);
		CHECK_EQ(rtc_reg(rtc, 0x00), tm.tm_sec);
		CHECK_EQ(rtc_reg(rtc, 0x02), tm.tm_min);
		CHECK_EQ(rtc_reg(rtc, 0x04), tm.tm_hour);
		CHECK_EQ(rtc_reg(rtc, 0x06), tm.tm_wday + 1);
		CHECK_EQ(rtc_reg(rtc, 0x07), tm.tm_mday);
		CHECK_EQ(rtc_reg(rtc, 0x08), tm.tm_mon + 1);
		CHECK_EQ(rtc_reg(rtc, 0x09), tm.tm_year % 100);
		CHECK_EQ(rtc_reg(rtc, 0x32), (tm.tm_year + 1900) / 100);
		if (test_failures)
			break; /* one bad date says enough */
	}
	rtc_cmos_destroy(rtc);
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
	test_rtc_calendar();
	test_acpi_pm();
	test_resets();
	return test_done("board");
}
