/* The MC146818 CMOS RTC: index/data ports, the clock read from the host in BCD, 128 bytes of NVRAM. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rtc_cmos.h"

enum {
	RTC_SECONDS = 0x00, RTC_MINUTES = 0x02, RTC_HOURS = 0x04, RTC_DAY_OF_WEEK = 0x06,
	RTC_DAY = 0x07, RTC_MONTH = 0x08, RTC_YEAR = 0x09, RTC_REG_A = 0x0a, RTC_REG_B = 0x0b,
	RTC_REG_C = 0x0c, RTC_REG_D = 0x0d, RTC_CENTURY = 0x32,
};

#define RTC_B_24H 0x02
#define RTC_B_BINARY 0x04
#define RTC_D_VRT 0x80

struct rtc_cmos {
	pthread_mutex_t lock;
	time_t (*now)(void);
	uint8_t index;
	uint8_t nvram[128];
};

/*
 * clock_gettime(), not time(): without a vDSO (vdso=0, some sandboxes) glibc's
 * time() is the time system call, which the seccomp filters do not allow;
 * clock_gettime() falls back to clock_gettime, which they do.
 */
static time_t rtc_host_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return 0;
	return ts.tv_sec;
}

int rtc_cmos_create(time_t (*now)(void), struct rtc_cmos **out)
{
	struct rtc_cmos *rtc = calloc(1, sizeof(*rtc));

	if (!rtc)
		return -ENOMEM;
	pthread_mutex_init(&rtc->lock, NULL);
	rtc->now = now ? now : rtc_host_now;
	rtc->nvram[RTC_REG_A] = 0x26; /* 32.768 kHz base, 1024 Hz rate; UIP clear */
	rtc->nvram[RTC_REG_B] = RTC_B_24H;
	*out = rtc;
	return 0;
}

void rtc_cmos_destroy(struct rtc_cmos *rtc)
{
	if (!rtc)
		return;
	pthread_mutex_destroy(&rtc->lock);
	free(rtc);
}

/*
 * UTC by arithmetic (days to civil date, Hinnant's algorithm), not gmtime_r():
 * glibc's first gmtime_r() loads the time zone, opening /etc/localtime from
 * the vCPU thread, which its seccomp filter forbids.  The RTC keeps UTC.
 */
static void rtc_utc(time_t t, struct tm *tm)
{
	int64_t days = t / 86400, secs = t % 86400, z, era, y;
	unsigned int doe, yoe, doy, mp;

	if (secs < 0) {
		secs += 86400;
		days--;
	}
	memset(tm, 0, sizeof(*tm));
	tm->tm_hour = (int)(secs / 3600);
	tm->tm_min = (int)(secs / 60 % 60);
	tm->tm_sec = (int)(secs % 60);
	tm->tm_wday = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
	z = days + 719468;                          /* days since 0000-03-01 */
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned int)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;                   /* March = 0 */
	y = (int64_t)yoe + era * 400 + (mp >= 10);
	tm->tm_mday = (int)(doy - (153 * mp + 2) / 5 + 1);
	tm->tm_mon = (int)(mp < 10 ? mp + 2 : mp - 10);
	tm->tm_year = (int)(y - 1900);
}

static uint8_t rtc_encode(const struct rtc_cmos *rtc, int v)
{
	if (rtc->nvram[RTC_REG_B] & RTC_B_BINARY)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t rtc_read(struct rtc_cmos *rtc, uint8_t reg)
{
	time_t t = rtc->now();
	struct tm tm;

	if (reg > RTC_YEAR && reg != RTC_CENTURY) {
		if (reg == RTC_REG_C)
			return 0; /* no interrupt flags: veil raises no RTC interrupts */
		if (reg == RTC_REG_D)
			return RTC_D_VRT;
		return rtc->nvram[reg];
	}
	rtc_utc(t, &tm);
	switch (reg) {
	case RTC_SECONDS: return rtc_encode(rtc, tm.tm_sec);
	case RTC_MINUTES: return rtc_encode(rtc, tm.tm_min);
	case RTC_HOURS: return rtc_encode(rtc, tm.tm_hour);
	case RTC_DAY_OF_WEEK: return rtc_encode(rtc, tm.tm_wday + 1);
	case RTC_DAY: return rtc_encode(rtc, tm.tm_mday);
	case RTC_MONTH: return rtc_encode(rtc, tm.tm_mon + 1);
	case RTC_YEAR: return rtc_encode(rtc, tm.tm_year % 100);
	case RTC_CENTURY: return rtc_encode(rtc, (tm.tm_year + 1900) / 100);
	default: return rtc->nvram[reg]; /* alarm registers */
	}
}

static void rtc_write(struct rtc_cmos *rtc, uint8_t reg, uint8_t v)
{
	/* The clock follows the host: writes to time registers are dropped. */
	if (reg <= RTC_YEAR || reg == RTC_CENTURY || reg == RTC_REG_C || reg == RTC_REG_D)
		return;
	if (reg == RTC_REG_A)
		v &= 0x7f; /* UIP is read-only */
	rtc->nvram[reg] = v;
}

static int rtc_bus_read(void *opaque, uint64_t offset, void *data, unsigned int len)
{
	struct rtc_cmos *rtc = opaque;

	if (len != 1)
		return -EINVAL;
	pthread_mutex_lock(&rtc->lock);
	*(uint8_t *)data = offset == 0 ? rtc->index : rtc_read(rtc, rtc->index);
	pthread_mutex_unlock(&rtc->lock);
	return 0;
}

static int rtc_bus_write(void *opaque, uint64_t offset, const void *data, unsigned int len)
{
	struct rtc_cmos *rtc = opaque;
	uint8_t v = *(const uint8_t *)data;

	if (len != 1)
		return -EINVAL;
	pthread_mutex_lock(&rtc->lock);
	if (offset == 0)
		rtc->index = v & 0x7f; /* bit 7 is the NMI mask */
	else
		rtc_write(rtc, rtc->index, v);
	pthread_mutex_unlock(&rtc->lock);
	return 0;
}

const struct bus_device_ops rtc_cmos_bus_ops = {
	.read = rtc_bus_read,
	.write = rtc_bus_write,
};
