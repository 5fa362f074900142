/* The OCI runtime spec (config.json, runtime-spec 1.0 to 1.2) as plain data:
 * the fields runvm acts on, validated, with errors that name the file, the
 * JSON path and the fix. Unknown fields are ignored, as runc ignores them;
 * later consumers (seccomp, capabilities, rlimits, hooks) read `doc`. */
#ifndef RV_RUNTIME_SPEC_H
#define RV_RUNTIME_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/proto.h"
#include "runtime/hooks.h"
#include "runtime/json.h"

/* DESIGN §7: how a spec's resources become a VM. */
#define SPEC_DEFAULT_CPUS 1u
#define SPEC_MAX_CPUS 256u
#define SPEC_DEFAULT_CPU_PERIOD_US 100000u      /* the kernel's CFS default */
#define SPEC_DEFAULT_MEM_BYTES (256ull << 20)
#define SPEC_MIN_MEM_BYTES (64ull << 20)
#define SPEC_ANNOTATION_CPUS "io.runvm.cpus"
#define SPEC_ANNOTATION_MEMORY "io.runvm.memory"
#define SPEC_ANNOTATION_TEMPLATE "io.runvm.template"

#define SPEC_MAX_RLIMITS 16        /* Linux's RLIM_NLIMITS */
/* runc reads any size; a bound keeps a mistaken path (a disk image) from
 * eating memory. Real files are a few KiB, seccomp profiles tens of KiB. */
#define SPEC_MAX_FILE_BYTES (16u << 20)

/* process.capabilities' sets, in this order. */
enum { SPEC_CAP_BOUNDING, SPEC_CAP_EFFECTIVE, SPEC_CAP_INHERITABLE, SPEC_CAP_PERMITTED,
       SPEC_CAP_AMBIENT, SPEC_CAP_SETS };
extern const char *const spec_cap_set_names[SPEC_CAP_SETS];

struct oci_mount { char *destination, *type, *source; char **options; size_t noptions; };
struct oci_kv { char *key, *value; };
struct oci_namespace { char *type, *path; };      /* path NULL when absent */
/* One line of linux.uidMappings or gidMappings. In runvm the "host" ids are
 * the guest's: the user namespace is made in the guest, whose files carry
 * the host's ids through virtio-fs unchanged. */
struct oci_id_map { uint32_t container_id, host_id, size; };
#define SPEC_MAX_ID_MAPS 340u   /* lines the kernel takes per map */

struct oci_process {
	bool terminal;
	unsigned console_height, console_width;   /* 0 when absent */
	char **args;           /* NULL-terminated, at least one */
	char **env;            /* NULL-terminated, may be empty (env[0] == NULL) */
	char *cwd;             /* absolute */
	uint32_t uid, gid;
	uint32_t *additional_gids; size_t nadditional_gids;
	bool has_umask; uint32_t umask;
	bool no_new_privileges;
	/* process.capabilities as bit masks (bit N = capability N); without
	 * the object, has_caps is false: the process keeps what root has. */
	bool has_caps;
	uint64_t caps[SPEC_CAP_SETS];
	/* process.rlimits, each type once (Linux's RLIMIT_* numbers). */
	size_t nrlimits;
	struct oci_rlimit { uint32_t type; uint64_t soft, hard; } rlimits[SPEC_MAX_RLIMITS];
	bool has_oom_score_adj;
	int32_t oom_score_adj;     /* -1000..1000 */
	size_t nargs, nenv;
};

struct oci_spec {
	char *oci_version;
	char *root_path;       /* absolute: a relative root.path is resolved against the bundle */
	bool root_readonly;
	struct oci_process process;
	char *hostname;        /* NULL when absent */
	char *domainname;      /* NULL when absent */
	/* linux.maskedPaths and linux.readonlyPaths: absolute, no "..". */
	char **masked_paths; size_t nmasked;
	char **readonly_paths; size_t nreadonly;
	/* linux.sysctl as "key=value", in document order. */
	char **sysctls; size_t nsysctls;
	struct oci_mount *mounts; size_t nmounts;
	/* In document order, each key once: a repeated key keeps its last value
	 * and place, as runc's map keeps the last. */
	struct oci_kv *annotations; size_t nannotations;
	char *cgroups_path;    /* linux.cgroupsPath, NULL when absent */
	char *rootfs_propagation;   /* linux.rootfsPropagation as written, NULL when absent */
	/* As written: quota -1 (or any value <= 0) means no limit, period 0 absent. */
	bool has_cpu_quota; int64_t cpu_quota; uint64_t cpu_period;   /* linux.resources.cpu */
	/* As written: a limit <= 0 (runc's -1) means none. */
	bool has_memory_limit; int64_t memory_limit;                 /* linux.resources.memory.limit */
	/* linux.devices: target is the path in the container (malloc'd), kind
	 * 'c', 'b' or 'p' ("u" reads as 'c'), mode 0666 when fileMode is absent. */
	struct proto_mknod *devices; size_t ndevices;
	struct oci_namespace *namespaces; size_t nnamespaces;
	/* A new user namespace (linux.namespaces "user") with these maps;
	 * without one both are empty. */
	bool userns;
	struct oci_id_map *uid_maps; size_t nuid_maps;
	struct oci_id_map *gid_maps; size_t ngid_maps;
	struct oci_hooks hooks;
	struct json_doc *doc;  /* the whole parsed tree, for later consumers */
	char *bundle;          /* absolute; spec_load resolves symlinks, spec_parse does not */
};

/* Reads BUNDLE/config.json. Errors read "bundle B: config.json: PATH: what"
 * or "bundle B: no such directory". On failure *s is empty (spec_free-safe). */
int spec_load(const char *bundle, struct oci_spec *s, struct rv_err *err);

/* Parses TEXT; BUNDLE (made absolute against the current directory when it
 * is relative; NULL: the current directory) anchors a relative root.path.
 * Errors read "config.json: PATH: what". */
int spec_parse(const char *text, size_t len, const char *bundle, struct oci_spec *s,
	       struct rv_err *err);

/* A process object alone (runvm exec --process FILE, runc's process.json):
 * its errors name the path from the object ("args: must be ..."). On
 * success *doc holds the tree (json_free it) for later consumers. */
int spec_parse_process(const char *text, size_t len, struct oci_process *p,
		       struct json_doc **doc, struct rv_err *err);
void spec_process_free(struct oci_process *p);

/* Frees everything and zeroes *s; freeing twice is harmless. */
void spec_free(struct oci_spec *s);

/* The value of annotation KEY, NULL when absent. */
const char *spec_annotation(const struct oci_spec *s, const char *key);

/* A pod's resources, the sums of its containers' limits, which containerd's
 * CRI plugin gives the pod's sandbox (kubelet 1.23+). */
#define SPEC_POD_CPU_QUOTA "io.kubernetes.cri.sandbox-cpu-quota"
#define SPEC_POD_CPU_PERIOD "io.kubernetes.cri.sandbox-cpu-period"
#define SPEC_POD_MEMORY "io.kubernetes.cri.sandbox-memory"

/* DESIGN §7: vCPUs = ceil(quota / period), default 1, at most SPEC_MAX_CPUS
 * (a quota is a ceiling, so fewer vCPUs still honour it); RAM = the memory
 * limit rounded down to whole MiB, default 256 MiB, at least 64 MiB. A
 * pod's sandbox, whose VM holds the whole pod, takes the pod's quota and
 * period instead, and the pod's memory (at least 64 MiB). The annotations
 * io.runvm.cpus (1..256) and io.runvm.memory (512M, 1G, bytes) override all
 * of these; a bad value is an error naming the annotation. */
/* Whether the VM may start from a template, and save one (vmm/template.h):
 * annotation io.runvm.template "true" (the default) or "false"; anything
 * else is an error naming it. */
int spec_vm_template(const struct oci_spec *s, bool *use, struct rv_err *err);
int spec_vm_shape(const struct oci_spec *s, unsigned *cpus, uint64_t *mem_bytes,
		  struct rv_err *err);

/* The config.json `runvm spec` writes, as `runc spec` does (rootless: as
 * `runc spec --rootless`). Malloc'd, the caller frees; NULL when out of memory.
 * Defined in runtime/cmd_spec.c, next to the verb that writes it. */
char *spec_default_json(bool rootless);

#endif
