/*
 * The nested platform's control API client (L1 has busybox, no curl): one
 * request over a Unix socket, printed as "STATUS BODY" on one line.
 * Usage: api-client SOCKET METHOD ENDPOINT [JSON]  (ENDPOINT: vm.info, ...)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static char req[70000], resp[1 << 20];
	const char *body = argc > 4 ? argv[4] : "", *p;
	size_t got = 0;
	ssize_t n;
	int fd, len;

	if (argc < 4 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: api-client SOCKET METHOD ENDPOINT [JSON]\n");
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	len = snprintf(req, sizeof(req), "%s /api/v1/%s HTTP/1.1\r\nHost: localhost\r\n"
		       "Connection: close\r\nContent-Length: %zu\r\n\r\n%s", argv[2], argv[3],
		       strlen(body), body);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) || len < 0 ||
	    (size_t)len >= sizeof(req) || write(fd, req, (size_t)len) != len) {
		perror("api-client");
		return 1;
	}
	while (got < sizeof(resp) - 1 && (n = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
		got += (size_t)n;
	resp[got] = '\0';
	p = strstr(resp, "\r\n\r\n");
	if (strncmp(resp, "HTTP/1.1 ", 9) || !p) {
		printf("000 %s\n", resp);
		return 1;
	}
	printf("%.3s %s\n", resp + 9, p + 4);
	return 0;
}
