/* The firmware images built from firmware/ and embedded in veil and its tests. */
#ifndef VEIL_FW_BLOBS_H
#define VEIL_FW_BLOBS_H

#include <stddef.h>
#include <stdint.h>

extern const uint8_t fw_blob_selftest[];
extern const size_t fw_blob_selftest_size;
extern const uint8_t fw_blob_stress[];
extern const size_t fw_blob_stress_size;
extern const uint8_t fw_blob_conversions[];
extern const size_t fw_blob_conversions_size;
extern const uint8_t fw_blob_refusal[];
extern const size_t fw_blob_refusal_size;
/* Test firmware, linked into tests only. */
extern const uint8_t fw_blob_peek[];
extern const size_t fw_blob_peek_size;

#endif
