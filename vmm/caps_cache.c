/* The probe cache: behaviour probes' results per host kernel boot, in a file checked strictly. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "caps_cache.h"

#define CAPS_CACHE_HEADER "veil-caps-cache 1\n"
#define CAPS_CACHE_FILE "caps"
#define BOOT_ID_LEN 36

static const char *const entry_names[CAPS_CACHE_NR] = {
	[CAPS_CACHE_REVOKE] = "revoke_safe",
	[CAPS_CACHE_HYPERCALL] = "hypercall_exit",
};

void caps_cache_init(struct caps_cache *c)
{
	unsigned int i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < CAPS_CACHE_NR; i++)
		c->e[i].value = -1;
}

/* Printable ASCII without the characters JSON would need escaped: what veil itself writes. */
static bool plain_text(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
			return false;
	return true;
}

static int read_boot_id(char *id, size_t len)
{
	char buf[64];
	ssize_t n;
	int fd, i;

	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n != BOOT_ID_LEN + 1 || buf[BOOT_ID_LEN] != '\n' || len <= BOOT_ID_LEN)
		return -EINVAL;
	for (i = 0; i < BOOT_ID_LEN; i++)
		if (!strchr("0123456789abcdef-", buf[i]) || !buf[i])
			return -EINVAL;
	memcpy(id, buf, BOOT_ID_LEN);
	id[BOOT_ID_LEN] = '\0';
	return 0;
}

int caps_cache_key(char *key, size_t len)
{
	char id[BOOT_ID_LEN + 1];
	struct utsname u;
	int ret, n;

	if (uname(&u) < 0)
		return -errno;
	ret = read_boot_id(id, sizeof(id));
	if (ret)
		return ret;
	n = snprintf(key, len, "%s %s", u.release, id);
	if (n < 0 || (size_t)n >= len || !plain_text(key, (size_t)n))
		return -EINVAL;
	return 0;
}

int caps_cache_dir(char *dir, size_t len)
{
	const char *v = getenv("VEIL_CACHE_DIR"), *suffix = "";
	int n;

	if (!v || !*v) {
		v = getenv("XDG_CACHE_HOME");
		suffix = "/veil";
	}
	if (!v || !*v) {
		v = getenv("HOME");
		suffix = "/.cache/veil";
	}
	if (!v || v[0] != '/')
		return -ENOENT;
	n = snprintf(dir, len, "%s%s", v, suffix);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int caps_cache_format(char *buf, size_t len, const char *key, const struct caps_cache *c)
{
	size_t off;
	int n, i;

	n = snprintf(buf, len, CAPS_CACHE_HEADER "key %s\n", key);
	for (i = 0; n >= 0 && (size_t)n < len && i < CAPS_CACHE_NR; i++) {
		off = (size_t)n;
		n = snprintf(buf + off, len - off, "%s %d %s\n", entry_names[i], c->e[i].value,
			     c->e[i].detail);
		n = n < 0 ? n : (int)off + n;
	}
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

/* One line, "NAME VALUE DETAIL\n"; *p moves past it. */
static int parse_entry(const char **p, const char *end, int i, struct caps_cache *c)
{
	size_t nl = strlen(entry_names[i]);
	const char *s = *p, *eol = memchr(s, '\n', (size_t)(end - s));

	if (!eol || (size_t)(eol - s) < nl + 3 || memcmp(s, entry_names[i], nl) || s[nl] != ' ')
		return -EINVAL;
	s += nl + 1;
	if (!strncmp(s, "-1 ", 3))
		c->e[i].value = -1, s += 3;
	else if ((s[0] == '0' || s[0] == '1') && s[1] == ' ')
		c->e[i].value = s[0] - '0', s += 2;
	else
		return -EINVAL;
	if (s > eol || (size_t)(eol - s) >= sizeof(c->e[i].detail) ||
	    !plain_text(s, (size_t)(eol - s)))
		return -EINVAL;
	memcpy(c->e[i].detail, s, (size_t)(eol - s));
	c->e[i].detail[eol - s] = '\0';
	*p = eol + 1;
	return 0;
}

int caps_cache_parse(const char *buf, size_t len, const char *key, struct caps_cache *c)
{
	const char *p = buf, *end = buf + len, *eol;
	char again[CAPS_CACHE_MAX], got_key[CAPS_CACHE_KEY];
	size_t hl = strlen(CAPS_CACHE_HEADER);
	int i, n;

	caps_cache_init(c);
	if (len >= CAPS_CACHE_MAX || len < hl + 5 || memcmp(p, CAPS_CACHE_HEADER, hl) ||
	    memcmp(p + hl, "key ", 4))
		return -EINVAL;
	p += hl + 4;
	eol = memchr(p, '\n', (size_t)(end - p));
	if (!eol || (size_t)(eol - p) >= sizeof(got_key) || !plain_text(p, (size_t)(eol - p)))
		return -EINVAL;
	memcpy(got_key, p, (size_t)(eol - p));
	got_key[eol - p] = '\0';
	p = eol + 1;
	for (i = 0; i < CAPS_CACHE_NR; i++)
		if (parse_entry(&p, end, i, c))
			goto bad;
	/* Only what caps_cache_format() writes, byte for byte: no extra spaces, lines or zeros. */
	n = caps_cache_format(again, sizeof(again), got_key, c);
	if (n < 0 || (size_t)n != len || memcmp(again, buf, len))
		goto bad;
	if (strcmp(got_key, key)) {
		caps_cache_init(c);
		return -ESTALE;
	}
	return 0;
bad:
	caps_cache_init(c);
	return -EINVAL;
}

int caps_cache_load(const char *dir, const char *key, struct caps_cache *c)
{
	char path[PATH_MAX], buf[CAPS_CACHE_MAX];
	ssize_t n;
	int fd;

	caps_cache_init(c);
	if ((size_t)snprintf(path, sizeof(path), "%s/" CAPS_CACHE_FILE, dir) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return -errno;
	return caps_cache_parse(buf, (size_t)n, key, c);
}

/* mkdir -p for the cache directory, 0700 for what it makes. */
static int make_dir(const char *dir)
{
	char p[PATH_MAX];
	size_t i, n = strlen(dir);

	if (n >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, dir, n + 1);
	for (i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return -errno;
		p[i] = dir[i];
	}
	return 0;
}

int caps_cache_store(const char *dir, const char *key, const struct caps_cache *c)
{
	char path[PATH_MAX], tmp[PATH_MAX], buf[CAPS_CACHE_MAX];
	int n, fd, ret;

	n = caps_cache_format(buf, sizeof(buf), key, c);
	if (n < 0)
		return n;
	if ((size_t)snprintf(path, sizeof(path), "%s/" CAPS_CACHE_FILE, dir) >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/." CAPS_CACHE_FILE ".XXXXXX", dir) >= sizeof(tmp))
		return -ENAMETOOLONG;
	ret = make_dir(dir);
	if (ret)
		return ret;
	fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0)
		return -errno;
	ret = write(fd, buf, (size_t)n) == n ? 0 : -EIO;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}
