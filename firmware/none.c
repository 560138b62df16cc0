/*
 * Empty images for the firmware guests an architecture does not have: x86 has all but arm64's
 * refusal (VEIL_FW_X86), arm64 all but x86's test program peek (VEIL_FW_HAVE_PROGRAMS), others
 * none.  A run of one says the firmware is not available there (vmm/fw.c).
 */
#include <stddef.h>
#include <stdint.h>

#include "fw_blobs.h"

#if !defined(VEIL_FW_HAVE_PROGRAMS) && !defined(VEIL_FW_X86)
const uint8_t fw_blob_selftest[1];
const size_t fw_blob_selftest_size;
const uint8_t fw_blob_stress[1];
const size_t fw_blob_stress_size;
const uint8_t fw_blob_conversions[1];
const size_t fw_blob_conversions_size;
#endif
#ifndef VEIL_FW_HAVE_PROGRAMS
const uint8_t fw_blob_refusal[1];
const size_t fw_blob_refusal_size;
#endif
#ifndef VEIL_FW_X86
const uint8_t fw_blob_peek[1];
const size_t fw_blob_peek_size;
#endif
