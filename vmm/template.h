/* Template clones (issue: beat the anchors; DESIGN §9): the saved memory and
 * machine state of a VM booted as far as "agent ready", from which later VMs
 * of the same kernel, initramfs and shape start instead of booting.
 *
 * A store is a directory (under the CLI's --root: `.templates/`), one
 * directory per template named by its key, holding `memory` (the guest's
 * RAM, sparse: a page never touched or all zeros is a hole) and `state`
 * (tagged records, common/snapbuf.h). A template is written into a private
 * directory `.tmp.PID.N` and renamed into place whole, so a reader sees
 * all of one or nothing; what a VMM that died left behind is swept by the
 * next one that opens the store.
 *
 * The key hashes everything a guest's memory depends on before it is told
 * anything: this runvm binary, the kernel and initrd files (device, inode,
 * size, change time), vCPUs, RAM, the kernel cmdline and the device set. */
#ifndef RV_TEMPLATE_H
#define RV_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

/* Under the CLI's --root, beside the containers' state directories: a leading
 * dot, which no container id has (DESIGN §6), so no id can take its place. */
#define TEMPLATE_STORE_DIR ".templates"
#define TEMPLATE_KEY_BYTES 17      /* 16 hex digits and a NUL */
#define TEMPLATE_STATE_MAX_BYTES (4u << 20)

struct template_shape {
	const char *kernel, *initrd;   /* paths; initrd may be NULL */
	unsigned cpus;
	uint64_t mem_bytes;
	const char *cmdline;           /* the whole one the guest boots with */
	const char *devices;           /* the virtio devices in slot order, e.g. "rng,vsock,fs" */
	const void *cpuid;             /* what KVM offers (KVM_GET_SUPPORTED_CPUID) */
	size_t cpuid_bytes;
};

/* Also hashes this host's boot id: a template never outlives the KVM, CPU
 * features and TSC rate it was saved under. */
int template_key(const struct template_shape *s, char key[TEMPLATE_KEY_BYTES], struct rv_err *err);

struct template_store {
	int dir_fd;                    /* -1: none */
};

/* Opens (making it, mode 0700) the store directory and sweeps what dead
 * writers left there. */
int template_store_open(const char *dir, struct template_store *st, struct rv_err *err);
void template_store_close(struct template_store *st);

/* A template to clone from: 1 with its memory file (O_RDONLY) and state
 * read whole (malloc'd), 0 when there is none for key, -1 on an error. A
 * memory file whose size is not mem_bytes is an error. */
int template_open(const struct template_store *st, const char *key, uint64_t mem_bytes, int *mem_fd,
		  uint8_t **state, size_t *state_len, struct rv_err *err);
/* Moves a template that failed to restore out of the way, so the next VM
 * boots (and saves a good one) instead of failing the same way. */
void template_discard(const struct template_store *st, const char *key);

/* A template being written by the VMM that boots its shape first. Its
 * files and a lock on the key are taken before the VMM's jail, which then
 * holds no directory of the store: the VMM fills the files and closes them,
 * and the CLI that started it publishes them (template_publish). */
struct template_writer {
	int mem_fd, state_fd, lock_fd;
	char tmp_name[64];             /* ".tmp.PID.KEY" */
};

/* 1: begun; 0: not now (another VMM holds the key's lock and is saving it,
 * or the store's filesystem has no room for it): boot without saving; -1. */
int template_writer_begin(const struct template_store *st, const char *key, uint64_t mem_bytes,
			  struct template_writer *w, struct rv_err *err);
/* The pages of guest RAM (a memfd of mem_bytes, mapped at base) that hold
 * anything. Zeros the memfd has no pages for, and runs of zero pages of at
 * least TEMPLATE_HOLE_MIN_BYTES, are left as holes; a clone maps only the
 * rest of the file (guest_mem_create_cow). */
int template_writer_memory(struct template_writer *w, int memfd, const uint8_t *base,
			   uint64_t mem_bytes, struct rv_err *err);
/* The state, whose last record must be TEMPLATE_END_TAG with no bytes: what
 * template_publish looks for. */
int template_writer_state(struct template_writer *w, const void *state, size_t len,
			  struct rv_err *err);
void template_writer_end(struct template_writer *w);

#define TEMPLATE_END_TAG 0x646e6574u    /* "tend" */
#define TEMPLATE_HOLE_MIN_BYTES (256u * 1024)

/* The CLI, once VMM `vmm` said its container is ready: every template it
 * wrote whole is renamed into place (another's of the same key wins), one
 * it left unfinished is removed. Errors only cost later VMs their head start:
 * logged by the caller, never fatal. */
int template_publish(const char *dir, pid_t vmm, struct rv_err *err);
/* The CLI, after a create failed: a clone whose guest did not come up names
 * its template in the error ("clone of template KEY"); that template goes,
 * so the next container of the shape boots and saves a new one. */
void template_forget_failed(const char *dir, const char *vmm_error);

#endif
