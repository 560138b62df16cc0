/* Freestanding helpers every firmware shares: a spinlock and formatted output to the UART. */
#include "fwlib.h"

static volatile uint32_t print_lock;

void fw_lock(void)
{
	while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE))
		cpu_relax();
}

void fw_unlock(void)
{
	__atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE);
}

static void put_str(const char *s)
{
	while (*s)
		fw_putc(*s++);
}

static void put_num(uint64_t v, unsigned int base)
{
	char buf[24];
	int i = 0;

	do {
		buf[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (i)
		fw_putc(buf[--i]);
}

void fw_vprintf(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		int is_long = 0;

		if (*fmt != '%') {
			fw_putc(*fmt);
			continue;
		}
		if (*++fmt == 'l') {
			is_long = 1;
			fmt++;
		}
		switch (*fmt) {
		case 's':
			put_str(va_arg(ap, const char *));
			break;
		case 'c':
			fw_putc((char)va_arg(ap, int));
			break;
		case 'd': {
			int64_t v = is_long ? va_arg(ap, int64_t) : va_arg(ap, int);

			if (v < 0) {
				fw_putc('-');
				v = -v;
			}
			put_num((uint64_t)v, 10);
			break;
		}
		case 'u':
			put_num(is_long ? va_arg(ap, uint64_t) : va_arg(ap, uint32_t), 10);
			break;
		case 'x':
			put_num(is_long ? va_arg(ap, uint64_t) : va_arg(ap, uint32_t), 16);
			break;
		case '\0':
			return;
		default:
			fw_putc(*fmt);
			break;
		}
	}
}

void fw_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fw_vprintf(fmt, ap);
	va_end(ap);
}
