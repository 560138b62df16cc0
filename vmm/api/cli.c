/* The control API's glue to veil's CLI: `veil serve`, and the wait loop of `veil run --api-socket`. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "fwsvc.h"
#include "server.h"

#define EXIT_USAGE 2

struct api_cli {
	struct api_server *srv;
	struct api_ctx ctx;
	struct veil_vm *vm;
	struct api_config ac; /* the VM's configuration: owned strings under serve only */
	bool serve;           /* the VM is the API's to create, and veil outlives it */
	bool exited;          /* the VM stopped and its threads were joined (serve) */
	struct veil_exit exit;
	bool quit;            /* vmm.shutdown */
	int quit_code;
	struct fwsvc svc;     /* firmware "conversions": its host-side service, as veil run attaches */
};

/* One operation, carried to the main thread (api_server_call) with its arguments. */
struct call {
	struct api_cli *c;
	int (*fn)(struct call *k);
	struct api_config *ac;
	struct veil_error *err;
	struct veil_info *info;
	struct veil_exit *exit;
	const struct api_config **config;
	struct veil_counters *counters;
	struct veil_memory *mem;
	veil_counter_fn cfn;
	veil_extent_fn efn;
	void *opaque;
	uint64_t a, b;
	bool flag;
	enum api_vm_state state;
};

static int trampoline(void *arg)
{
	struct call *k = arg;

	return k->fn(k);
}

static int run_call(void *o, struct call *k)
{
	int ret;

	k->c = o;
	ret = api_server_call(k->c->srv, trampoline, k);
	return ret == -ESHUTDOWN ? -EAGAIN : ret; /* veil is stopping: try again is all it can say */
}

static int do_state(struct call *k)
{
	struct api_cli *c = k->c;

	if (!c->vm)
		k->state = API_VM_NONE;
	else
		switch (veil_vm_state(c->vm)) {
		case VEIL_STATE_CREATED: k->state = API_VM_CREATED; break;
		case VEIL_STATE_RUNNING: k->state = API_VM_RUNNING; break;
		case VEIL_STATE_PAUSED: k->state = API_VM_PAUSED; break;
		default: k->state = API_VM_STOPPED; break;
		}
	return 0;
}

static enum api_vm_state op_state(void *o)
{
	struct call k = { .fn = do_state, .state = API_VM_STOPPED };

	return run_call(o, &k) ? API_VM_STOPPED : k.state;
}

static int do_create(struct call *k)
{
	struct api_cli *c = k->c;
	int ret;

	if (c->vm || !c->serve)
		return -EBUSY;
	/* The conversions firmware asks veil to act as its host: the harness's service port. */
	if (k->ac->cfg.boot.firmware && !strcmp(k->ac->cfg.boot.firmware, "conversions"))
		ret = fwsvc_vm_create(&c->svc, &k->ac->cfg, &c->vm, k->err);
	else
		ret = veil_vm_create(&k->ac->cfg, &c->vm, k->err);
	if (!ret)
		c->ac = *k->ac; /* moved: the VM's configuration for vm.info */
	return ret;
}

static int op_create(void *o, struct api_config *ac, struct veil_error *err)
{
	struct call k = { .fn = do_create, .ac = ac, .err = err };

	return run_call(o, &k);
}

static int do_boot(struct call *k)
{
	struct api_cli *c = k->c;
	int ret = veil_install_kick_handler(c->ac.cfg.kick_signal);

	if (!ret)
		ret = veil_vm_start(c->vm, k->err);
	/* Like veil run: once the VM runs, the main thread only waits and relays. */
	if (!ret && veil_vm_confine_caller(c->vm, k->err))
		veil_vm_stop(c->vm, VEIL_EXIT_FAILURE, k->err->msg);
	return ret;
}

static int op_boot(void *o, struct veil_error *err)
{
	struct call k = { .fn = do_boot, .err = err };

	return run_call(o, &k);
}

static int do_info(struct call *k)
{
	struct api_cli *c = k->c;
	int ret = veil_vm_info(c->vm, k->info);

	*k->config = &c->ac;
	*k->exit = c->exit;
	if (!c->exited && veil_vm_state(c->vm) == VEIL_STATE_STOPPED)
		k->exit->code = -1; /* stopping: the code is known once veil_vm_wait() says */
	return ret;
}

static int op_info(void *o, struct veil_info *info, struct veil_exit *ex,
		   const struct api_config **config)
{
	struct call k = { .fn = do_info, .info = info, .exit = ex, .config = config };

	return run_call(o, &k);
}

static int do_counters(struct call *k)
{
	return veil_vm_counters(k->c->vm, k->counters);
}

static int op_counters(void *o, struct veil_counters *cnt)
{
	struct call k = { .fn = do_counters, .counters = cnt };

	return run_call(o, &k);
}

static int do_device_counters(struct call *k)
{
	return veil_vm_device_counters(k->c->vm, k->cfn, k->opaque);
}

static int op_device_counters(void *o, veil_counter_fn fn, void *opaque)
{
	struct call k = { .fn = do_device_counters, .cfn = fn, .opaque = opaque };

	return run_call(o, &k);
}

static int do_pause(struct call *k)
{
	return veil_vm_pause(k->c->vm);
}

static int op_pause(void *o)
{
	struct call k = { .fn = do_pause };

	return run_call(o, &k);
}

static int do_resume(struct call *k)
{
	return veil_vm_resume(k->c->vm);
}

static int op_resume(void *o)
{
	struct call k = { .fn = do_resume };

	return run_call(o, &k);
}

static int do_shutdown(struct call *k)
{
	return veil_vm_stop(k->c->vm, VEIL_EXIT_POWEROFF, "vm.shutdown through the control API");
}

static int op_shutdown(void *o)
{
	struct call k = { .fn = do_shutdown };

	return run_call(o, &k);
}

static int do_vmm_shutdown(struct call *k)
{
	k->c->quit = true;
	return 0;
}

static int op_vmm_shutdown(void *o)
{
	struct call k = { .fn = do_vmm_shutdown };

	return run_call(o, &k);
}

static int do_balloon(struct call *k)
{
	return veil_vm_set_balloon(k->c->vm, k->a);
}

static int op_set_balloon(void *o, uint64_t bytes)
{
	struct call k = { .fn = do_balloon, .a = bytes };

	return run_call(o, &k);
}

static int do_convert(struct call *k)
{
	return veil_vm_convert(k->c->vm, k->a, k->b, k->flag, k->err);
}

static int op_convert(void *o, uint64_t gpa, uint64_t size, bool to_private, struct veil_error *err)
{
	struct call k = { .fn = do_convert, .a = gpa, .b = size, .flag = to_private, .err = err };

	return run_call(o, &k);
}

static int do_discard(struct call *k)
{
	return veil_vm_discard(k->c->vm, k->a, k->b, k->err);
}

static int op_discard(void *o, uint64_t gpa, uint64_t size, struct veil_error *err)
{
	struct call k = { .fn = do_discard, .a = gpa, .b = size, .err = err };

	return run_call(o, &k);
}

static int do_memory(struct call *k)
{
	return veil_vm_memory(k->c->vm, k->mem, k->efn, k->opaque);
}

static int op_memory(void *o, struct veil_memory *m, veil_extent_fn fn, void *opaque)
{
	struct call k = { .fn = do_memory, .mem = m, .efn = fn, .opaque = opaque };

	return run_call(o, &k);
}

static const struct api_ops cli_ops = {
	.state = op_state, .create = op_create, .boot = op_boot, .info = op_info,
	.counters = op_counters, .device_counters = op_device_counters, .pause = op_pause,
	.resume = op_resume, .shutdown = op_shutdown, .vmm_shutdown = op_vmm_shutdown,
	.set_balloon = op_set_balloon, .convert = op_convert, .discard = op_discard,
	.memory = op_memory,
};

static int cli_start(struct api_cli *c, const char *path, bool seccomp, char *err, size_t len)
{
	c->ctx.ops = &cli_ops;
	c->ctx.opaque = c;
	c->ctx.version = veil_version();
	c->ctx.pid = (int)getpid();
	return api_server_start(path, &c->ctx, seccomp, &c->srv, err, len);
}

int api_cli_open(struct api_cli **out, const char *path, struct veil_vm *vm,
		 const struct veil_config *cfg, char *err, size_t len)
{
	struct api_cli *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	c->vm = vm;
	c->ac.cfg = *cfg; /* its strings stay the caller's: ac owns none */
	veil_config_init(&c->ctx.defaults);
	ret = cli_start(c, path, cfg->seccomp, err, len);
	if (ret) {
		free(c);
		return ret;
	}
	*out = c;
	return 0;
}

/* A stop signal: the VM stops with 128 + N; without one, veil does. */
static void on_signal(struct api_cli *c, int sfd)
{
	struct signalfd_siginfo si;
	char reason[64];

	if (read(sfd, &si, sizeof(si)) != sizeof(si))
		return;
	snprintf(reason, sizeof(reason), "stopped by SIG%s", sigabbrev_np((int)si.ssi_signo) ?: "?");
	c->quit_code = 128 + (int)si.ssi_signo;
	if (c->vm && !c->exited)
		veil_vm_stop(c->vm, c->quit_code, reason);
	c->quit = true;
}

/* The main thread's loop: the API's calls, the VM's stop and stop signals. */
static void cli_loop(struct api_cli *c, int sfd)
{
	bool stopping = false;

	for (;;) {
		struct pollfd pfd[3] = {
			{ .fd = api_server_call_fd(c->srv), .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
			{ .fd = c->vm && !c->exited ? veil_vm_stop_fd(c->vm) : -1, .events = POLLIN },
		};

		if (poll(pfd, 3, -1) < 0 && errno != EINTR)
			return;
		if (pfd[0].revents & POLLIN)
			api_server_run_calls(c->srv);
		if (sfd >= 0 && (pfd[1].revents & POLLIN))
			on_signal(c, sfd);
		if (pfd[2].revents & POLLIN) {
			if (!c->serve)
				return; /* veil run waits for the VM itself */
			veil_vm_wait(c->vm, -1, &c->exit);
			c->exited = true;
		}
		if (c->quit && (!c->vm || c->exited))
			return;
		if (c->quit && !stopping) {
			veil_vm_stop(c->vm, c->quit_code, c->quit_code ? "stopped by a signal" :
				     "vmm.shutdown through the control API");
			stopping = true;
		}
	}
}

void api_cli_wait(struct api_cli *c, int sfd)
{
	cli_loop(c, sfd);
}

void api_cli_close(struct api_cli *c)
{
	if (!c)
		return;
	api_server_stop(c->srv);
	if (c->serve) {
		veil_vm_destroy(c->vm);
		api_config_free(&c->ac);
	}
	free(c);
}

static const char usage_serve[] =
	"usage: veil serve --api-socket PATH [options]\n"
	"\n"
	"Starts with no VM and serves the control API (HTTP/1.1 and JSON, see\n"
	"docs/api.md) on a Unix socket: PUT /api/v1/vm.create with the VM's\n"
	"configuration, then PUT /api/v1/vm.boot.  veil keeps serving after the VM\n"
	"stops, until PUT /api/v1/vmm.shutdown or a stop signal.\n"
	"\n"
	"options:\n"
	"      --api-socket PATH  the socket to create (mode 0600); an existing file\n"
	"                         is refused, never replaced\n"
	"      --seccomp on|off   on (default): the API thread loads its seccomp filter\n"
	"                         (the VM's own threads follow vm.create's \"seccomp\")\n"
	"  -h, --help             show this help\n"
	"\n"
	"exit codes: 0 after vmm.shutdown, 1 the API could not start, 2 bad usage,\n"
	"128+N stopped by signal N.\n";

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "veil serve: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return EXIT_USAGE;
}

static int parse_serve(int argc, char **argv, const char **path, bool *seccomp)
{
	static const struct option longopts[] = {
		{ "api-socket", required_argument, NULL, 's' },
		{ "seccomp", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int ch;

	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's': *path = optarg; break;
		case 'S':
			if (strcmp(optarg, "on") && strcmp(optarg, "off"))
				return usage_error("--seccomp '%s': on or off", optarg);
			*seccomp = !strcmp(optarg, "on");
			break;
		case 'h': fputs(usage_serve, stdout); return -1;
		case ':': return usage_error("option '%s' needs a value", argv[optind - 1]);
		default: return usage_error("unknown option '%s' (see veil serve --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!*path)
		return usage_error("--api-socket PATH is needed (see veil serve --help)");
	return 0;
}

/* SIGINT, SIGTERM, SIGHUP and SIGQUIT through a signalfd, as veil run takes them. */
static int stop_signals(sigset_t *old)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	pthread_sigmask(SIG_BLOCK, &set, old);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

int api_cli_serve(int argc, char **argv)
{
	struct api_cli *c = calloc(1, sizeof(*c));
	const char *path = NULL;
	bool seccomp = true;
	char err[200] = "";
	sigset_t old;
	int ret, sfd, code;

	if (!c)
		return VEIL_EXIT_FAILURE;
	ret = parse_serve(argc, argv, &path, &seccomp);
	if (ret) {
		free(c);
		return ret < 0 ? 0 : ret;
	}
	c->serve = true;
	veil_config_init(&c->ctx.defaults);
	c->ctx.defaults.console_out_fd = STDOUT_FILENO;
	sfd = stop_signals(&old);
	ret = cli_start(c, path, seccomp, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "veil serve: --api-socket '%s': %s\n", path, err);
		close(sfd);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		free(c);
		return ret == -EEXIST || ret == -ENAMETOOLONG ? EXIT_USAGE : VEIL_EXIT_FAILURE;
	}
	cli_loop(c, sfd);
	code = c->quit_code;
	api_cli_close(c);
	close(sfd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return code;
}
