/*
 * The confidential mode: veil measures what it loaded (kernel, device tree, initrd, entry),
 * makes every page of RAM private, and only then lets a vCPU run; from there on the guest
 * shares what its devices need (arm64: MEM_SHARE) and veil's devices reach nothing else (I3).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "confidential.h"
#include "log.h"
#include "sha256.h"
#include "gmem.h"

#define COCO_CHUNK (1U << 20)

int coco_init(struct vm_coco *c)
{
	int ret = lat_init(&c->share_lat);

	if (ret)
		return ret;
	ret = lat_init(&c->unshare_lat);
	if (ret)
		lat_free(&c->share_lat);
	return ret;
}

void coco_free(struct vm_coco *c)
{
	if (!c->share_lat.buckets)
		return;
	lat_free(&c->share_lat);
	lat_free(&c->unshare_lat);
}

int coco_blob_header(char *buf, size_t len, const char *name, uint64_t gpa, uint64_t size)
{
	return snprintf(buf, len, "veil-launch-v1 %s gpa=0x%016llx size=0x%016llx\n", name,
			(unsigned long long)gpa, (unsigned long long)size);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int measure_line(struct sha256_stream *h, int fd, const char *line)
{
	sha256_stream_update(h, line, strlen(line));
	return fd >= 0 ? write_all(fd, line, strlen(line)) : 0;
}

/* A blob's header, then its bytes from guest memory: into the hash and the manifest. */
static int measure(struct gmem *gm, struct sha256_stream *h, int fd, const char *name, uint64_t gpa,
		   uint64_t size, uint8_t *buf)
{
	char hdr[128];
	int ret;
	uint64_t off;

	coco_blob_header(hdr, sizeof(hdr), name, gpa, size);
	ret = measure_line(h, fd, hdr);
	for (off = 0; !ret && off < size; off += COCO_CHUNK) {
		size_t len = size - off < COCO_CHUNK ? (size_t)(size - off) : COCO_CHUNK;

		ret = gmem_read(gm, gpa + off, buf, len);
		if (!ret)
			sha256_stream_update(h, buf, len);
		if (!ret && fd >= 0)
			ret = write_all(fd, buf, len);
	}
	return ret;
}

static uint64_t coco_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int coco_launch(struct vm_coco *c, struct gmem *gm, const struct arch_boot_state *st, unsigned int nr_cpus,
		const char *manifest_path, char *err, size_t errlen)
{
	const struct gmem_layout *l = gmem_get_layout(gm);
	struct gmem_conv_result res = { .culprit = "" };
	struct sha256_stream h;
	uint8_t *buf = malloc(COCO_CHUNK);
	char entry[96];
	uint64_t t0;
	int fd = -1, ret = 0;
	unsigned int i;

	if (!buf)
		return -ENOMEM;
	if (manifest_path) {
		fd = open(manifest_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			ret = -errno;
			snprintf(err, errlen, "launch manifest '%s': %s", manifest_path, strerror(-ret));
			goto out;
		}
	}
	t0 = coco_now_ns();
	sha256_stream_begin(&h);
	for (i = 0; i < st->nr_blobs && !ret; i++) {
		ret = measure(gm, &h, fd, st->blob[i].name, st->blob[i].gpa, st->blob[i].size, buf);
		c->measured_bytes += st->blob[i].size;
	}
	/* Where the boot vCPU starts (x0: the device tree), and how many vCPUs there are. */
	snprintf(entry, sizeof(entry), "veil-launch-v1 entry pc=0x%016llx x0=0x%016llx vcpus=%u\n",
		 (unsigned long long)st->entry, (unsigned long long)st->boot_params, nr_cpus);
	if (!ret)
		ret = measure_line(&h, fd, entry);
	if (ret) {
		snprintf(err, errlen, "measuring the launch%s%s: %s", fd >= 0 ? " into " : "",
			 fd >= 0 ? manifest_path : "", strerror(-ret));
		goto out;
	}
	sha256_stream_end_hex(&h, c->digest);
	c->digest_ns = coco_now_ns() - t0;
	/*
	 * Every page private before any vCPU runs: the guest shares what it will, one granule per
	 * call, so veil's mapping comes back at the first device access, a shared run at a time.
	 */
	gmem_set_lazy_restore(gm, true);
	t0 = coco_now_ns();
	for (i = 0; i < l->nr && !ret; i++)
		ret = gmem_convert(gm, l->r[i].gpa, l->r[i].size, true, &res);
	c->private_ns = coco_now_ns() - t0;
	if (ret) {
		snprintf(err, errlen, "making guest RAM private: %s%s%s", strerror(-ret),
			 res.culprit[0] ? ": " : "", res.culprit);
		goto out;
	}
	c->private_at_launch = coco_private_bytes(gm);
out:
	if (fd >= 0 && close(fd) && !ret) {
		ret = -errno;
		snprintf(err, errlen, "launch manifest '%s': %s", manifest_path, strerror(-ret));
	}
	free(buf);
	return ret;
}

void coco_record(struct vm_coco *c, bool to_private, uint64_t ns)
{
	if (c->on)
		lat_add(to_private ? &c->unshare_lat : &c->share_lat, ns);
}

static void add_private(void *opaque, uint64_t gpa, uint64_t len, bool priv)
{
	(void)gpa;
	if (priv)
		*(uint64_t *)opaque += len;
}

uint64_t coco_private_bytes(struct gmem *gm)
{
	uint64_t bytes = 0;

	if (gm)
		(void)gmem_attr_extents(gm, add_private, &bytes);
	return bytes;
}
