/* The MC146818 CMOS RTC: time of day from the host clock, in BCD, and its NVRAM. */
#ifndef VEIL_RTC_CMOS_H
#define VEIL_RTC_CMOS_H

#include <time.h>

#include "bus.h"

struct rtc_cmos;

/* now() gives the wall-clock time; NULL means time(). */
int rtc_cmos_create(time_t (*now)(void), struct rtc_cmos **out) __must_check;
void rtc_cmos_destroy(struct rtc_cmos *rtc);

/* Two ports: 0 selects a register, 1 reads or writes it. */
extern const struct bus_device_ops rtc_cmos_bus_ops;

#endif
