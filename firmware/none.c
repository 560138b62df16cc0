/*
 * Empty images for the firmware guests an architecture does not have (x86 has them all; arm64
 * all but the test program peek, VEIL_FW_HAVE_PROGRAMS): a run of one says the firmware is not
 * available there (vmm/fw.c).
 */
#include <stddef.h>
#include <stdint.h>

#include "fw_blobs.h"

#ifndef VEIL_FW_HAVE_PROGRAMS
const uint8_t fw_blob_selftest[1];
const size_t fw_blob_selftest_size;
const uint8_t fw_blob_stress[1];
const size_t fw_blob_stress_size;
const uint8_t fw_blob_conversions[1];
const size_t fw_blob_conversions_size;
#endif
const uint8_t fw_blob_peek[1];
const size_t fw_blob_peek_size;
