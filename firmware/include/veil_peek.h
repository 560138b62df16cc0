/* The peek test firmware's ports: a host-driven loop of guest memory reads and writes. */
#ifndef VEIL_PEEK_H
#define VEIL_PEEK_H

#define PEEK_PORT_OP 0x510      /* in: PEEK_OP_* */
#define PEEK_PORT_ADDR_LO 0x514 /* in: GPA, low 32 bits */
#define PEEK_PORT_ADDR_HI 0x518 /* in: GPA, high 32 bits */
#define PEEK_PORT_VAL_LO 0x51c  /* in: value to write; out: value read */
#define PEEK_PORT_VAL_HI 0x520

#define PEEK_OP_DONE 0
#define PEEK_OP_READ 1
#define PEEK_OP_WRITE 2

#endif
