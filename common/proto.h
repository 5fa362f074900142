/* The host <-> agent protocol (DESIGN §4): one definition, one encoder and one
 * strict decoder, used by the VMM and by the in-guest agent alike.
 *
 * Wire format, all integers little-endian:
 *   frame   = header payload
 *   header  = u32 payload_len, u16 type, u16 reserved (must be 0), u32 id
 *   payload = the fields of `type`, in order, nothing after them:
 *     u32     4 bytes
 *     str     u32 length, then that many bytes, none of them NUL
 *     strv    u32 count, then count strs
 *     u32v    u32 count, then count u32s
 *
 * Every connection to the agent (vsock port PROTO_AGENT_PORT) starts with
 * HELLO from the host; the agent answers HELLO with the version it speaks, or
 * ERROR. A control connection then carries requests (id chosen by the host,
 * echoed in the reply). A stream connection sends ATTACH, gets OK, and from
 * then on carries raw bytes of one stdio stream of one process.
 *
 * Exec: EXEC -> OK; ATTACH each wanted stream on its own connection; START ->
 * STARTED (or ERROR with the exec errno); later the agent sends EXIT, with the
 * request id of the EXEC, once the process is reaped and its stdout and stderr
 * have been written out and shut down.
 *
 * Mount: MOUNT -> OK, or ERROR with the errno of what failed. The container's
 * root and volumes (DESIGN §5) are mounts the host asks for before its EXEC.
 *
 * Version 2 added MOUNT and EXEC's root. */
#ifndef RV_PROTO_H
#define RV_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define PROTO_VERSION 2
#define PROTO_AGENT_PORT 1024u          /* agent listens here (guest side) */
#define PROTO_READY_PORT 1024u          /* host port the agent dials once listening */
#define PROTO_HDR_BYTES 12u
#define PROTO_MAX_PAYLOAD_BYTES (256u * 1024)
#define PROTO_MAX_STRV 4096u            /* args, env entries, groups */
#define PROTO_MAX_STR_BYTES (128u * 1024)

enum proto_type {
	PROTO_HELLO = 1,     /* both ways: version */
	PROTO_OK,            /* reply: no fields */
	PROTO_ERROR,         /* reply: errno, message */
	PROTO_EXEC,          /* host: prepare a process (not started yet) */
	PROTO_ATTACH,        /* host, first on a stream connection: exec id, stream */
	PROTO_START,         /* host: exec id */
	PROTO_STARTED,       /* agent: guest pid */
	PROTO_SIGNAL,        /* host: exec id, signal */
	PROTO_EXIT,          /* agent: exec id, how it ended */
	PROTO_SHUTDOWN,      /* host: power the VM off (agent replies OK first) */
	PROTO_MOUNT,         /* host: mount a filesystem in the guest */
	PROTO_TYPE_MAX = PROTO_MOUNT,
};

enum proto_stream { PROTO_STDIN = 0, PROTO_STDOUT = 1, PROTO_STDERR = 2 };

/* Which stdio streams the host will attach; an unattached one is /dev/null. */
#define PROTO_WANT_STDIN  (1u << PROTO_STDIN)
#define PROTO_WANT_STDOUT (1u << PROTO_STDOUT)
#define PROTO_WANT_STDERR (1u << PROTO_STDERR)

struct proto_exec {
	uint32_t exec_id;            /* chosen by the host, unique per VM */
	uint32_t streams;            /* PROTO_WANT_* */
	uint32_t uid, gid;
	const char *root;            /* "" = none, else an absolute guest path: chroot there */
	const char *cwd;             /* "" = agent's cwd ("/"); inside root when one is set */
	uint32_t argc;               /* >= 1 */
	const char **argv;
	uint32_t envc;
	const char **envp;
	uint32_t ngroups;            /* supplementary groups */
	const uint32_t *groups;
};

/* mount(2)'s arguments. A bind (flags & MS_BIND) ignores fstype and data and
 * applies MS_RDONLY, MS_NOSUID, MS_NODEV and MS_NOEXEC by a remount, as the
 * kernel needs; the agent creates target (a directory, or an empty file for
 * a bind of a file) when it is missing. */
struct proto_mount {
	const char *source;
	const char *target;          /* absolute guest path, no ".." component */
	const char *fstype;          /* "" for a bind */
	uint32_t flags;              /* MS_* bits of <sys/mount.h> */
	const char *data;            /* filesystem options, "" for none */
};

struct proto_msg {
	enum proto_type type;
	uint32_t id;
	union {
		struct { uint32_t version; } hello;
		struct { uint32_t code; const char *message; } error;
		struct proto_exec exec;
		struct { uint32_t exec_id, stream; } attach;
		struct { uint32_t exec_id; } start;
		struct { uint32_t pid; } started;
		struct { uint32_t exec_id, signo; } signal;
		/* exit: signo != 0 means killed by that signal, else code is the status */
		struct { uint32_t exec_id, code, signo; } exit;
		struct proto_mount mount;
	};
	void *arena;                 /* decoder-owned strings and arrays */
};

/* Appends one whole frame for m to *buf (grown with realloc; *len and *cap track it).
 * Fails (EMSGSIZE) when the payload would exceed PROTO_MAX_PAYLOAD_BYTES or a
 * field breaks a limit above: the encoder never makes what the decoder refuses. */
int proto_encode(const struct proto_msg *m, uint8_t **buf, size_t *len, size_t *cap,
		 struct rv_err *err);

/* Looks at the bytes buffered so far. Returns the whole frame's length when
 * one is complete, 0 when more bytes are needed, -1 (err set) when the header
 * is already invalid: oversized length, unknown type, reserved bits set. */
long proto_frame_check(const uint8_t *buf, size_t len, struct rv_err *err);

/* Decodes exactly one complete frame of `len` bytes (as proto_frame_check
 * measured). Strict: every field present, no trailing bytes, strings without
 * NUL, counts within the limits. On success m owns an arena: proto_msg_free. */
int proto_decode(const uint8_t *frame, size_t len, struct proto_msg *m, struct rv_err *err);
void proto_msg_free(struct proto_msg *m);

/* Blocking helpers for a connected stream socket. proto_recv returns 0 with a
 * message, 1 on a clean EOF before any byte of a frame, -1 on error (a frame
 * cut short by EOF is an error). */
int proto_send(int fd, const struct proto_msg *m, struct rv_err *err);
int proto_recv(int fd, struct proto_msg *m, struct rv_err *err);

const char *proto_type_name(uint32_t type);

#endif
