/*
 * The entry points from before the device registry (devices.h), kept as
 * thin wrappers of vm_device_attach() and friends until their callers move.
 */
#ifndef VEIL_VIRTIO_DEVS_H
#define VEIL_VIRTIO_DEVS_H

#include "devices.h"

static inline __must_check int vm_add_disk(struct vm *vm, const struct vm_disk_cfg *cfg,
					   char *err, size_t errlen)
{
	return vm_device_attach(vm, VDEV_BLK, cfg, err, errlen);
}

static inline __must_check int vm_add_balloon(struct vm *vm, char *err, size_t errlen)
{
	return vm_device_attach(vm, VDEV_BALLOON, NULL, err, errlen);
}

static inline __must_check int vm_add_rng(struct vm *vm, char *err, size_t errlen)
{
	return vm_device_attach(vm, VDEV_RNG, NULL, err, errlen);
}

static inline __must_check int vm_add_vconsole(struct vm *vm, int out_fd, char *err,
					       size_t errlen)
{
	struct vm_vcon_cfg cfg = { .out_fd = out_fd };

	return vm_device_attach(vm, VDEV_VCON, &cfg, err, errlen);
}

static inline void vm_virtio_destroy(struct vm *vm)
{
	vm_devices_destroy(vm);
}

static inline void vm_virtio_summary(struct vm *vm, FILE *f)
{
	vm_devices_summary(vm, f);
}

#endif
