/* Unit test: the probe cache's file format is read strictly, and written atomically with mode 0600. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caps_cache.h"
#include "test.h"

#define KEY "6.18.0-test 0274668e-5147-4477-8bb8-53eb640e49af"

static const char good[] =
	"veil-caps-cache 1\n"
	"key " KEY "\n"
	"revoke_safe 1 a guest read of a revoked page still saw its data\n"
	"hypercall_exit -1 \n";

static int parse(const char *text, struct caps_cache *c)
{
	return caps_cache_parse(text, strlen(text), KEY, c);
}

static void test_parse_good(void)
{
	struct caps_cache c;

	CHECK_EQ(parse(good, &c), 0);
	CHECK_EQ(c.e[CAPS_CACHE_REVOKE].value, 1);
	CHECK(strcmp(c.e[CAPS_CACHE_REVOKE].detail, "a guest read of a revoked page still saw its data") == 0);
	CHECK_EQ(c.e[CAPS_CACHE_HYPERCALL].value, -1);
	CHECK_EQ(c.e[CAPS_CACHE_HYPERCALL].detail[0], '\0');
}

/* Replaces the first from in good with to, and expects the result refused with err. */
static void expect_refused(const char *from, const char *to, int err)
{
	char buf[CAPS_CACHE_MAX * 2];
	const char *at = strstr(good, from);
	struct caps_cache c;
	size_t pre;

	CHECK(at != NULL);
	if (!at)
		return;
	pre = (size_t)(at - good);
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)pre, good, to, at + strlen(from));
	CHECK_EQ(parse(buf, &c), err);
	/* A refused file leaves nothing behind that looks known. */
	CHECK_EQ(c.e[CAPS_CACHE_REVOKE].value, -1);
	CHECK_EQ(c.e[CAPS_CACHE_HYPERCALL].value, -1);
}

static void test_parse_refuses(void)
{
	struct caps_cache c;
	char big[CAPS_CACHE_MAX + 16];

	expect_refused("veil-caps-cache 1", "veil-caps-cache 2", -EINVAL);
	expect_refused("revoke_safe 1", "revoke_safe 2", -EINVAL);
	expect_refused("revoke_safe 1", "revoke_safe 01", -EINVAL);
	expect_refused("revoke_safe 1", "revoke_safe  1", -EINVAL);
	expect_refused("revoke_safe 1", "revoke_safe -0", -EINVAL);
	expect_refused("revoke_safe 1 a", "revoke_safe 1\ta", -EINVAL);
	expect_refused("revoke_safe", "hypercall_exit", -EINVAL); /* order and names are fixed */
	expect_refused("its data", "its \"data\"", -EINVAL);      /* would break caps --json */
	expect_refused("its data", "its \\data", -EINVAL);
	expect_refused("hypercall_exit -1 \n", "hypercall_exit -1\n", -EINVAL);
	expect_refused("hypercall_exit -1 \n", "hypercall_exit -1 \nextra 1 x\n", -EINVAL);
	expect_refused("hypercall_exit -1 \n", "hypercall_exit -1 ", -EINVAL); /* truncated */
	expect_refused("hypercall_exit -1 \n", "", -EINVAL);
	expect_refused("its data", "its d\x01ta", -EINVAL);
	expect_refused("its data", "its d\xc3\xa4ta", -EINVAL);
	/* Well formed, but another boot's: a miss of its own kind. */
	expect_refused("53eb640e49af", "53eb640e49b0", -ESTALE);
	/* A NUL inside, garbage, nothing, too much. */
	CHECK_EQ(caps_cache_parse(good, sizeof(good), KEY, &c), -EINVAL);
	CHECK_EQ(caps_cache_parse("", 0, KEY, &c), -EINVAL);
	CHECK_EQ(parse("\x7f" "ELF\x02\x01", &c), -EINVAL);
	memset(big, 'a', sizeof(big));
	memcpy(big, good, strlen(good));
	CHECK_EQ(caps_cache_parse(big, sizeof(big), KEY, &c), -EINVAL);
}

static void test_format_roundtrip(void)
{
	struct caps_cache c, back;
	char buf[CAPS_CACHE_MAX];
	int n;

	caps_cache_init(&c);
	c.e[CAPS_CACHE_REVOKE].value = 0;
	snprintf(c.e[CAPS_CACHE_REVOKE].detail, sizeof(c.e[0].detail), "became an MMIO exit");
	c.e[CAPS_CACHE_HYPERCALL].value = 1;
	n = caps_cache_format(buf, sizeof(buf), KEY, &c);
	CHECK(n > 0);
	CHECK_EQ(caps_cache_parse(buf, (size_t)n, KEY, &back), 0);
	CHECK_EQ(back.e[CAPS_CACHE_REVOKE].value, 0);
	CHECK_EQ(back.e[CAPS_CACHE_HYPERCALL].value, 1);
	CHECK(strcmp(back.e[CAPS_CACHE_REVOKE].detail, "became an MMIO exit") == 0);
	CHECK_EQ(caps_cache_format(buf, 16, KEY, &c), -ENOSPC);
}

static void test_store_load(void)
{
	char dir[] = "/tmp/veil-caps-cache-XXXXXX", sub[128], path[160];
	struct caps_cache c, back;
	struct stat st;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(sub, sizeof(sub), "%s/a/b", dir); /* made on the way, 0700 */
	snprintf(path, sizeof(path), "%s/caps", sub);
	CHECK_EQ(caps_cache_load(sub, KEY, &back), -ENOENT);
	caps_cache_init(&c);
	c.e[CAPS_CACHE_REVOKE].value = 1;
	CHECK_EQ(caps_cache_store(sub, KEY, &c), 0);
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);
	CHECK_EQ(stat(sub, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0700);
	CHECK_EQ(caps_cache_load(sub, KEY, &back), 0);
	CHECK_EQ(back.e[CAPS_CACHE_REVOKE].value, 1);
	CHECK_EQ(caps_cache_load(sub, "6.18.0-test other", &back), -ESTALE);
	/* A symlink in the file's place is not followed, and a store replaces it. */
	CHECK_EQ(unlink(path), 0);
	CHECK_EQ(symlink("/etc/hostname", path), 0);
	CHECK_EQ(caps_cache_load(sub, KEY, &back), -ELOOP);
	CHECK_EQ(caps_cache_store(sub, KEY, &c), 0);
	CHECK_EQ(lstat(path, &st), 0);
	CHECK(S_ISREG(st.st_mode));
	unlink(path);
	rmdir(sub);
	snprintf(sub, sizeof(sub), "%s/a", dir);
	rmdir(sub);
	rmdir(dir);
}

static void test_dir_and_key(void)
{
	char dir[256], key[CAPS_CACHE_KEY];

	setenv("VEIL_CACHE_DIR", "/x/veil-cache", 1);
	CHECK_EQ(caps_cache_dir(dir, sizeof(dir)), 0);
	CHECK(strcmp(dir, "/x/veil-cache") == 0);
	unsetenv("VEIL_CACHE_DIR");
	setenv("XDG_CACHE_HOME", "/x/xdg", 1);
	CHECK_EQ(caps_cache_dir(dir, sizeof(dir)), 0);
	CHECK(strcmp(dir, "/x/xdg/veil") == 0);
	unsetenv("XDG_CACHE_HOME");
	setenv("HOME", "/x/home", 1);
	CHECK_EQ(caps_cache_dir(dir, sizeof(dir)), 0);
	CHECK(strcmp(dir, "/x/home/.cache/veil") == 0);
	setenv("HOME", "relative", 1); /* never a cache relative to wherever veil runs */
	CHECK_EQ(caps_cache_dir(dir, sizeof(dir)), -ENOENT);
	unsetenv("HOME");
	CHECK_EQ(caps_cache_dir(dir, sizeof(dir)), -ENOENT);
	if (access("/proc/sys/kernel/random/boot_id", R_OK) == 0) {
		CHECK_EQ(caps_cache_key(key, sizeof(key)), 0);
		CHECK(strchr(key, ' ') != NULL);
		CHECK_EQ(strlen(strchr(key, ' ') + 1), 36);
	}
}

int main(void)
{
	test_parse_good();
	test_parse_refuses();
	test_format_roundtrip();
	test_store_load();
	test_dir_and_key();
	return test_done("test_caps_cache");
}
