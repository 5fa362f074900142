/* runvm spec [--bundle DIR] [--rootless]: write a default config.json, the one
 * `runc spec` writes (with runvm's hostname), for users to edit. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runtime/cli.h"
#include "runtime/spec.h"

#define DEFAULT_CAPS { "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", NULL }

struct default_mount {
	const char *destination, *type, *source;
	const char *options[8];      /* NULL-terminated */
};

static const struct default_mount default_mounts[] = {
	{ "/proc", "proc", "proc", { NULL } },
	{ "/dev", "tmpfs", "tmpfs", { "nosuid", "strictatime", "mode=755", "size=65536k", NULL } },
	{ "/dev/pts", "devpts", "devpts", { "nosuid", "noexec", "newinstance", "ptmxmode=0666",
					     "mode=0620", "gid=5", NULL } },
	{ "/dev/shm", "tmpfs", "shm", { "nosuid", "noexec", "nodev", "mode=1777", "size=65536k",
					NULL } },
	{ "/dev/mqueue", "mqueue", "mqueue", { "nosuid", "noexec", "nodev", NULL } },
	{ "/sys", "sysfs", "sysfs", { "nosuid", "noexec", "nodev", "ro", NULL } },
	{ "/sys/fs/cgroup", "cgroup", "cgroup", { "nosuid", "noexec", "nodev", "relatime", "ro",
						  NULL } },
};

/* Without privilege a fresh sysfs cannot be mounted, so runc binds the host's. */
static const struct default_mount rootless_sys = {
	"/sys", "none", "/sys", { "rbind", "nosuid", "noexec", "nodev", "ro", NULL },
};

static const char *const masked_paths[] = {
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
	"/proc/scsi", NULL,
};

static const char *const readonly_paths[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

/* "KEY": [ items ] in runc's layout (json.MarshalIndent with tabs), at DEPTH
 * tabs. Every string here is a constant that needs no escaping. */
static void put_strings(FILE *f, int depth, const char *key, const char *const *v, bool skip_ids,
			const char *tail)
{
	bool first = true;

	fprintf(f, "%.*s\"%s\": [", depth, "\t\t\t\t\t\t", key);
	for (; *v; v++) {
		/* runc --rootless drops uid=/gid= options: no such ids in the userns */
		if (skip_ids && (strncmp(*v, "uid=", 4) == 0 || strncmp(*v, "gid=", 4) == 0))
			continue;
		fprintf(f, "%s\n%.*s\"%s\"", first ? "" : ",", depth + 1, "\t\t\t\t\t\t\t", *v);
		first = false;
	}
	fprintf(f, "%s%.*s]%s\n", first ? "" : "\n", first ? 0 : depth, "\t\t\t\t\t\t", tail);
}

static void put_process(FILE *f)
{
	static const char *const args[] = { "sh", NULL };
	static const char *const env[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", NULL,
	};
	static const char *const caps[] = DEFAULT_CAPS;

	fputs("\t\"process\": {\n\t\t\"terminal\": true,\n"
	      "\t\t\"user\": {\n\t\t\t\"uid\": 0,\n\t\t\t\"gid\": 0\n\t\t},\n", f);
	put_strings(f, 2, "args", args, false, ",");
	put_strings(f, 2, "env", env, false, ",");
	fputs("\t\t\"cwd\": \"/\",\n\t\t\"capabilities\": {\n", f);
	put_strings(f, 3, "bounding", caps, false, ",");
	put_strings(f, 3, "effective", caps, false, ",");
	put_strings(f, 3, "permitted", caps, false, ",");
	put_strings(f, 3, "ambient", caps, false, "");
	fputs("\t\t},\n\t\t\"rlimits\": [\n\t\t\t{\n\t\t\t\t\"type\": \"RLIMIT_NOFILE\",\n"
	      "\t\t\t\t\"hard\": 1024,\n\t\t\t\t\"soft\": 1024\n\t\t\t}\n\t\t],\n"
	      "\t\t\"noNewPrivileges\": true\n\t},\n", f);
}

static void put_mounts(FILE *f, bool rootless)
{
	size_t n = sizeof(default_mounts) / sizeof(default_mounts[0]);

	fputs("\t\"mounts\": [\n", f);
	for (size_t i = 0; i < n; i++) {
		const struct default_mount *m = &default_mounts[i];
		if (rootless && strcmp(m->destination, "/sys") == 0)
			m = &rootless_sys;
		fprintf(f, "\t\t{\n\t\t\t\"destination\": \"%s\",\n\t\t\t\"type\": \"%s\",\n"
			"\t\t\t\"source\": \"%s\"%s\n", m->destination, m->type, m->source,
			m->options[0] ? "," : "");
		if (m->options[0])
			put_strings(f, 3, "options", m->options, rootless, "");
		fprintf(f, "\t\t}%s\n", i + 1 < n ? "," : "");
	}
	fputs("\t],\n", f);
}

static void put_namespaces(FILE *f, bool rootless)
{
	/* runc --rootless drops the network namespace (an unprivileged user
	 * cannot wire one up) and adds a user namespace. */
	static const char *const privileged[] = { "pid", "network", "ipc", "uts", "mount", NULL };
	static const char *const rootless_ns[] = { "pid", "ipc", "uts", "mount", "user", NULL };
	const char *const *v = rootless ? rootless_ns : privileged;

	fputs("\t\t\"namespaces\": [\n", f);
	for (size_t i = 0; v[i]; i++)
		fprintf(f, "\t\t\t{\n\t\t\t\t\"type\": \"%s\"\n\t\t\t}%s\n", v[i], v[i + 1] ? "," : "");
	fputs("\t\t],\n", f);
}

/* runc --rootless maps the caller's own ids to root, and nothing else. */
static void put_id_mappings(FILE *f)
{
	const char *const keys[] = { "uidMappings", "gidMappings" };
	unsigned ids[] = { (unsigned)geteuid(), (unsigned)getegid() };

	for (size_t i = 0; i < 2; i++)
		fprintf(f, "\t\t\"%s\": [\n\t\t\t{\n\t\t\t\t\"containerID\": 0,\n"
			"\t\t\t\t\"hostID\": %u,\n\t\t\t\t\"size\": 1\n\t\t\t}\n\t\t],\n",
			keys[i], ids[i]);
}

static void put_linux(FILE *f, bool rootless)
{
	fputs("\t\"linux\": {\n", f);
	if (rootless)
		put_id_mappings(f);
	else   /* runc --rootless leaves out resources: no cgroup to set them in */
		fputs("\t\t\"resources\": {\n\t\t\t\"devices\": [\n\t\t\t\t{\n"
		      "\t\t\t\t\t\"allow\": false,\n\t\t\t\t\t\"access\": \"rwm\"\n"
		      "\t\t\t\t}\n\t\t\t]\n\t\t},\n", f);
	put_namespaces(f, rootless);
	put_strings(f, 2, "maskedPaths", masked_paths, false, ",");
	put_strings(f, 2, "readonlyPaths", readonly_paths, false, "");
	fputs("\t}\n", f);
}

char *spec_default_json(bool rootless)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	fputs("{\n\t\"ociVersion\": \"1.2.0\",\n", f);
	put_process(f);
	fputs("\t\"root\": {\n\t\t\"path\": \"rootfs\",\n\t\t\"readonly\": true\n\t},\n"
	      "\t\"hostname\": \"runvm\",\n", f);
	put_mounts(f, rootless);
	put_linux(f, rootless);
	fputs("}\n", f);
	bool failed = ferror(f) != 0;
	if (fclose(f) != 0 || failed) {
		free(text);
		return NULL;
	}
	return text;
}

/* All of TEXT into a new BUNDLE/config.json; never over an existing one. */
static int write_config(const char *bundle, const char *text, struct rv_err *err)
{
	_cleanup_close_ int dirfd = open(bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dirfd < 0 && errno == ENOENT)
		return rv_failx(err, ENOENT, "no such directory");
	if (dirfd < 0)
		return rv_fail(err, errno, "open");
	_cleanup_close_ int fd = openat(dirfd, "config.json",
					O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0666);
	if (fd < 0 && errno == EEXIST)
		return rv_failx(err, EEXIST, "File config.json exists. Remove it first");
	if (fd < 0)
		return rv_fail(err, errno, "create config.json");
	for (size_t off = 0, len = strlen(text); off < len;) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* a half-written file would make the next `runvm spec` refuse */
			rv_fail(err, n < 0 ? errno : EIO, "write config.json");
			unlinkat(dirfd, "config.json", 0);
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

static void usage(void)
{
	printf("usage: runvm spec [--bundle DIR] [--rootless]\n\n"
	       "Write a default config.json (as runc spec) into DIR, the current directory\n"
	       "by default; refuses to overwrite one.\n\n"
	       "  -b, --bundle DIR   the bundle directory\n"
	       "  --rootless         for running without root: a user namespace mapping\n"
	       "                     your own uid and gid to root\n");
}

int cmd_spec(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	enum { OPT_ROOTLESS = 256 };
	static const struct option opts[] = {
		{ "bundle", required_argument, NULL, 'b' },
		{ "rootless", no_argument, NULL, OPT_ROOTLESS },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *bundle = NULL;
	bool rootless = false;
	int c;

	(void)cli;
	/* 0, not 1: glibc then starts afresh, with this optstring's '+' */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:b:h", opts, NULL)) != -1) {
		switch (c) {
		case 'b': bundle = optarg; break;
		case OPT_ROOTLESS: rootless = true; break;
		case 'h': usage(); return fflush(stdout) == 0 ? 0 : rv_fail(err, EIO, "write usage");
		case ':':
			return rv_failx(err, EINVAL, "spec: '%s' needs a value (see runvm spec --help)",
					argv[optind - 1]);
		default:
			if (optopt)
				return rv_failx(err, EINVAL, "spec: unknown flag '-%c' (see runvm "
						"spec --help)", optopt);
			return rv_failx(err, EINVAL, "spec: unknown flag '%s' (see runvm spec --help)",
					argv[optind - 1]);
		}
	}
	if (optind < argc)
		return rv_failx(err, EINVAL, "spec takes no arguments (got '%s'); give the "
				"directory as --bundle DIR", argv[optind]);

	_cleanup_free_ char *text = spec_default_json(rootless);
	if (!text)
		return rv_fail(err, ENOMEM, "spec: build config.json");
	if (write_config(bundle ? bundle : ".", text, err) < 0)
		return bundle ? rv_wrap(err, "bundle %s", bundle) : -1;
	return 0;
}
