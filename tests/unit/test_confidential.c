/*
 * The confidential launch (vmm/confidential.c) on a detached gmem: the manifest is the measured
 * stream, so sha256sum of it is the digest; the headers say name, GPA and size in load order;
 * the blob bytes are guest memory's; afterwards every page is private and veil's own access
 * to one is refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "virtio_drv.h"
#include "confidential.h"
#include "gmem.h"
#include "sha256.h"

#define MEM (4ULL << 20)

static size_t read_file(const char *path, char *buf, size_t max)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return 0;
	n = fread(buf, 1, max, f);
	fclose(f);
	return n;
}

/* What sha256sum(1) prints for path, if the tool is there; "" if not. */
static void sha256sum_tool(const char *path, char hex[65])
{
	char cmd[300];
	FILE *p;

	hex[0] = '\0';
	snprintf(cmd, sizeof(cmd), "sha256sum '%s' 2>/dev/null", path);
	p = popen(cmd, "r");
	if (!p)
		return;
	if (!fgets(hex, 65, p))
		hex[0] = '\0';
	pclose(p);
}

static void test_launch(void)
{
	struct gmem *gm = test_gmem(MEM, 20);
	struct vm_coco c = { .on = true };
	struct arch_boot_state st = {
		.entry = 0x200000, .boot_params = 0x3f0000, .nr_blobs = 3,
		.blob = { { "kernel", 0x200000, 5000 }, { "dtb", 0x3f0000, 4096 },
			  { "initrd", 0x300000, 100 } },
	};
	char path[] = "/tmp/veil-test-manifest-XXXXXX", err[200] = "", tool[65], hex[65];
	static char file[64 << 10], want[64 << 10];
	struct sha256_stream h;
	uint8_t kernel[5000], byte;
	size_t n, w = 0;
	bool priv;
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	close(fd);
	for (unsigned int i = 0; i < sizeof(kernel); i++)
		kernel[i] = (uint8_t)(i * 7);
	CHECK_EQ(gmem_write(gm, 0x200000, kernel, sizeof(kernel)), 0);
	CHECK_EQ(gmem_write(gm, 0x300000, "initrd-bytes", 12), 0);
	CHECK_EQ(coco_init(&c), 0);
	CHECK_EQ(coco_launch(&c, gm, &st, 2, path, err, sizeof(err)), 0);
	CHECK_EQ(strlen(c.digest), 64);

	/* The stream, rebuilt here from the documented format. */
	w += (size_t)sprintf(want + w, "veil-launch-v1 kernel gpa=0x%016x size=0x%016x\n", 0x200000,
			     5000);
	memcpy(want + w, kernel, sizeof(kernel));
	w += sizeof(kernel);
	w += (size_t)sprintf(want + w, "veil-launch-v1 dtb gpa=0x%016x size=0x%016x\n", 0x3f0000, 4096);
	memset(want + w, 0, 4096);
	w += 4096;
	w += (size_t)sprintf(want + w, "veil-launch-v1 initrd gpa=0x%016x size=0x%016x\n", 0x300000,
			     100);
	memset(want + w, 0, 100);
	memcpy(want + w, "initrd-bytes", 12);
	w += 100;
	w += (size_t)sprintf(want + w, "veil-launch-v1 entry pc=0x%016x x0=0x%016x vcpus=2\n",
			     0x200000, 0x3f0000);
	n = read_file(path, file, sizeof(file));
	CHECK_EQ(n, w);
	CHECK(memcmp(file, want, w) == 0);

	sha256_stream_begin(&h);
	sha256_stream_update(&h, want, w);
	sha256_stream_end_hex(&h, hex);
	CHECK(strcmp(hex, c.digest) == 0);
	sha256sum_tool(path, tool);
	if (tool[0])
		CHECK(strcmp(tool, c.digest) == 0);

	/* All of RAM private, and veil's own reads refused. */
	CHECK_EQ(c.private_at_launch, MEM);
	CHECK_EQ(coco_private_bytes(gm), MEM);
	CHECK_EQ(gmem_attr_is_private(gm, 0, &priv), 0);
	CHECK(priv);
	CHECK_EQ(gmem_read(gm, 0x200000, &byte, 1), -EACCES);

	/* Shares and unshares are timed apart. */
	coco_record(&c, false, 1000);
	coco_record(&c, false, 3000);
	coco_record(&c, true, 5000);
	CHECK_EQ(lat_count(&c.share_lat), 2);
	CHECK_EQ(lat_count(&c.unshare_lat), 1);
	coco_free(&c);
	unlink(path);
	gmem_destroy(gm);
}

/* A manifest that cannot be written fails the launch, and leaves RAM as it was. */
static void test_manifest_unwritable(void)
{
	struct gmem *gm = test_gmem(MEM, 20);
	struct vm_coco c = { .on = true };
	struct arch_boot_state st = { .nr_blobs = 1, .blob = { { "kernel", 0x200000, 10 } } };
	char err[200] = "";

	CHECK_EQ(coco_launch(&c, gm, &st, 1, "/nonexistent-dir/m", err, sizeof(err)), -ENOENT);
	CHECK_STR_CONTAINS(err, "/nonexistent-dir/m");
	CHECK_EQ(coco_private_bytes(gm), 0);
	gmem_destroy(gm);
}

int main(void)
{
	test_launch();
	test_manifest_unwritable();
	return test_done("test_confidential");
}
