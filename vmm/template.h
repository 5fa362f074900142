/* Template clones (issue: beat the anchors; DESIGN §9): the saved memory and
 * machine state of a VM booted as far as "agent ready", from which later VMs
 * of the same kernel, initramfs and shape start instead of booting.
 *
 * A store is a directory (under the CLI's --root: `templates/`), one
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

#include "common/err.h"

#define TEMPLATE_STORE_DIR "templates"   /* under the CLI's --root */
#define TEMPLATE_KEY_BYTES 17      /* 16 hex digits and a NUL */
#define TEMPLATE_STATE_MAX_BYTES (4u << 20)

struct template_shape {
	const char *kernel, *initrd;   /* paths; initrd may be NULL */
	unsigned cpus;
	uint64_t mem_bytes;
	const char *cmdline;           /* the whole one the guest boots with */
	const char *devices;           /* the virtio devices in slot order, e.g. "rng,vsock,fs" */
};

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

/* A template being written: made before the VMM's jail (which cannot open
 * files), filled and published from inside it. */
struct template_writer {
	int dir_fd;                    /* the store's; not owned */
	char tmp_name[64];
	int mem_fd, state_fd;
};

int template_writer_begin(const struct template_store *st, uint64_t mem_bytes,
			  struct template_writer *w, struct rv_err *err);
/* The pages of guest RAM (a memfd of mem_bytes, mapped at base) that hold
 * anything: ranges the memfd has no pages for and pages of zeros are left
 * as holes. */
int template_writer_memory(struct template_writer *w, int memfd, const uint8_t *base,
			   uint64_t mem_bytes, struct rv_err *err);
/* Writes the state and renames the directory to key; 0 also when another
 * VMM published the same key first (ours is then dropped). */
int template_writer_publish(struct template_writer *w, const void *state, size_t len,
			    const char *key, struct rv_err *err);
/* Closes the files; a writer never published leaves its directory for the
 * next sweep (the jail cannot remove it). */
void template_writer_end(struct template_writer *w);

#endif
