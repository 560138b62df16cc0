/* peek (test firmware): reads and writes guest memory as the host's test device tells it to. */
#include "fwlib.h"
#include "veil_peek.h"

static uint64_t in64(uint16_t lo, uint16_t hi)
{
	uint64_t v = inl(lo);

	return v | ((uint64_t)inl(hi) << 32);
}

void fw_main(uint64_t cpu, const struct veil_boot_info *bi)
{
	(void)bi;
	if (cpu != 0)
		fw_halt();
	for (;;) {
		uint32_t op = inl(PEEK_PORT_OP);
		volatile uint64_t *p;
		uint64_t v;

		if (op == PEEK_OP_DONE)
			fw_exit(0);
		p = (volatile uint64_t *)(uintptr_t)in64(PEEK_PORT_ADDR_LO, PEEK_PORT_ADDR_HI);
		if (op == PEEK_OP_READ) {
			v = *p;
			outl(PEEK_PORT_VAL_LO, (uint32_t)v);
			outl(PEEK_PORT_VAL_HI, (uint32_t)(v >> 32));
		} else if (op == PEEK_OP_WRITE) {
			*p = in64(PEEK_PORT_VAL_LO, PEEK_PORT_VAL_HI);
		} else {
			fw_exit(2);
		}
	}
}
