/*
 * The firmware guests are x86 programs: on other architectures veil is built with these empty
 * images, and a run of one says the firmware is not available there (vmm/fw.c).
 */
#include <stddef.h>
#include <stdint.h>

#include "fw_blobs.h"

const uint8_t fw_blob_selftest[1];
const size_t fw_blob_selftest_size;
const uint8_t fw_blob_stress[1];
const size_t fw_blob_stress_size;
const uint8_t fw_blob_conversions[1];
const size_t fw_blob_conversions_size;
const uint8_t fw_blob_peek[1];
const size_t fw_blob_peek_size;
