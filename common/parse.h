/* Parsing of user-supplied numbers and sizes. */
#ifndef VEIL_PARSE_H
#define VEIL_PARSE_H

#include <stdint.h>

#include "compiler.h"

/* "123", "64K", "64M", "2G", "1T": bytes; -EINVAL when malformed, -ERANGE on overflow. */
int parse_size(const char *s, uint64_t *out) __must_check;
/* A plain decimal unsigned integer, no sign, no suffix. */
int parse_uint(const char *s, uint64_t *out) __must_check;

#endif
