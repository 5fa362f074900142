/* The inode table (node ids the client holds, each an O_PATH fd keyed by
 * export, device and inode number) and the handle table (fh values). Node ids
 * and fh values are only ever looked up, never turned into pointers, so a
 * made-up or stale one is just "not found".
 *
 * A removed export (fs_server_remove_export) leaves both tables at once; what
 * a request in flight still holds is freed when its last reference drops, and
 * the slot is FREE for a later export only when nothing of it remains: its
 * flags stay valid for those requests, and the slot in a node id names one
 * export at a time. */
#include "devices/fs/fs_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned id_bucket(uint64_t nodeid)
{
	return (unsigned)((nodeid * 0x9e3779b97f4a7c15ull) >> 50) % FS_HASH_BUCKETS;
}

static unsigned key_bucket(dev_t dev, ino_t ino, unsigned export)
{
	uint64_t h = ((uint64_t)dev * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)ino * 0xc2b2ae3d27d4eb4full) ^ export;
	return (unsigned)((h ^ (h >> 29)) % FS_HASH_BUCKETS);
}

static struct fs_inode *by_id_locked(struct fs_server *s, uint64_t nodeid)
{
	struct fs_inode *i = s->by_id[id_bucket(nodeid)];

	while (i && i->nodeid != nodeid)
		i = i->next_by_id;
	return i;
}

/* --- the fd budget --------------------------------------------------------
 * Every inode the client remembers would pin an fd, and a client remembers
 * every inode while it has memory (an untar of /usr/share: 100k of them);
 * RLIMIT_NOFILE is far lower and may not be raised. So an inode nobody uses
 * right now may have its fd closed, least recently used first, and reopened
 * from a file handle (name_to_handle_at) when a request needs it. The handle
 * is taken only then, not at lookup: most inodes never reach the budget, and
 * a lookup that costs two syscalls instead of three is what `stat` of many
 * files is made of. Inodes without a handle (9p, another mount inside the
 * export, a deleted file) keep their fd. Lock held throughout. */

static void lru_remove(struct fs_server *s, struct fs_inode *i)
{
	if (!i->on_lru)
		return;
	if (i->lru_prev)
		i->lru_prev->lru_next = i->lru_next;
	else
		s->lru_head = i->lru_next;
	if (i->lru_next)
		i->lru_next->lru_prev = i->lru_prev;
	else
		s->lru_tail = i->lru_prev;
	i->lru_prev = i->lru_next = NULL;
	i->on_lru = false;
}

static void lru_push(struct fs_server *s, struct fs_inode *i)
{
	if (i->on_lru || i->keeps_fd || i->fd < 0 || i->refs || i->export_root || i->gone)
		return;
	i->lru_prev = s->lru_tail;
	if (s->lru_tail)
		s->lru_tail->lru_next = i;
	else
		s->lru_head = i;
	s->lru_tail = i;
	i->on_lru = true;
}

static void close_fd(struct fs_server *s, struct fs_inode *i)
{
	if (i->fd < 0)
		return;
	close(i->fd);
	i->fd = -1;
	s->open_fds--;
}

/* Whether i's file can be found again once its fd is closed. */
static bool take_handle(struct fs_server *s, struct fs_inode *i)
{
	const struct fs_export *e = &s->exports[i->export];
	union { struct file_handle fh; uint8_t raw[sizeof(struct file_handle) + MAX_HANDLE_SZ]; } h;
	struct stat st;
	int mount_id;

	if (i->handle)
		return true;
	/* A deleted file's handle outlives it only while someone holds it open. */
	if (e->mount_fd < 0 || fstatat(i->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ||
	    st.st_nlink == 0)
		return false;
	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(i->fd, "", &h.fh, &mount_id, AT_EMPTY_PATH) < 0 || mount_id != e->mount_id)
		return false;
	size_t len = sizeof(struct file_handle) + h.fh.handle_bytes;
	if ((i->handle = malloc(len)))
		memcpy(i->handle, &h, len);
	return i->handle != NULL;
}

static void evict(struct fs_server *s)
{
	while (s->open_fds > s->fd_budget && s->lru_head) {
		struct fs_inode *i = s->lru_head;
		lru_remove(s, i);
		if (take_handle(s, i))
			close_fd(s, i);
		else
			i->keeps_fd = true;
	}
}

static int reopen_from_handle(struct fs_server *s, struct fs_inode *i)
{
	const struct fs_export *e = &s->exports[i->export];

	/* A removed export's inodes are out of the tables, so never reopened;
	 * and its mount_fd is closed. Checked anyway: this is the one call
	 * that could reach a file by something other than a name under it. */
	if (e->state != FS_EXPORT_LIVE || e->mount_fd < 0)
		return -ESTALE;
	int fd = open_by_handle_at(e->mount_fd, i->handle, O_PATH | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	i->fd = fd;
	s->open_fds++;
	evict(s);
	return 0;
}

struct fs_inode *fs_inode_get(struct fs_server *s, uint64_t nodeid)
{
	if (nodeid == FS_ROOT_ID)
		return &s->root;
	pthread_mutex_lock(&s->lock);
	struct fs_inode *i = by_id_locked(s, nodeid);
	if (i) {
		i->refs++;
		lru_remove(s, i);
		if (i->fd < 0 && reopen_from_handle(s, i) < 0) {
			i->refs--;     /* gone from the host (ESTALE): as if forgotten */
			i = NULL;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return i;
}

static void unkey(struct fs_server *s, struct fs_inode *i)
{
	struct fs_inode **pp = &s->by_key[key_bucket(i->dev, i->ino, i->export)];

	while (*pp != i)
		pp = &(*pp)->next_by_key;
	*pp = i->next_by_key;
	i->next_by_key = NULL;
	i->keyed = false;
}

static void unlink_inode(struct fs_server *s, struct fs_inode *i)
{
	struct fs_inode **pp = &s->by_id[id_bucket(i->nodeid)];
	while (*pp != i)
		pp = &(*pp)->next_by_id;
	*pp = i->next_by_id;
	i->next_by_id = NULL;
	if (i->keyed)
		unkey(s, i);
}

/* Lock held: one inode or handle of export k fewer; a removed export's slot
 * is free once the last goes. */
static void export_obj_gone(struct fs_server *s, unsigned k)
{
	struct fs_export *e = &s->exports[k];

	if (--e->nobjs == 0 && e->state == FS_EXPORT_DRAINING)
		__atomic_store_n(&e->state, FS_EXPORT_FREE, __ATOMIC_RELEASE);
}

/* Lock held, i out of the tables. */
static void free_inode(struct fs_server *s, struct fs_inode *i)
{
	lru_remove(s, i);
	close_fd(s, i);
	free(i->handle);
	s->ninodes--;
	export_obj_gone(s, i->export);
	free(i);
}

/* Lock held. Frees i once no request uses it and the client forgot it (or
 * its export is gone, which the client's references do not outlive). */
static void maybe_free(struct fs_server *s, struct fs_inode *i)
{
	if (i->refs || (!i->gone && (i->nlookup || i->export_root)))
		return;
	if (!i->gone)
		unlink_inode(s, i);
	free_inode(s, i);
}

void fs_inode_put(struct fs_server *s, struct fs_inode *i)
{
	if (!i || i == &s->root)
		return;
	pthread_mutex_lock(&s->lock);
	if (--i->refs == 0 && !i->gone) {
		lru_push(s, i);
		evict(s);
	}
	maybe_free(s, i);
	pthread_mutex_unlock(&s->lock);
}

int fs_inode_gone(struct fs_server *s, uint64_t nodeid)
{
	unsigned k = (unsigned)(nodeid >> FS_NODEID_SLOT_SHIFT);
	bool stale = false;

	if (k < FS_MAX_EXPORTS) {
		pthread_mutex_lock(&s->lock);
		stale = (nodeid & FS_NODEID_SEQ_MASK) < s->exports[k].stale_below;
		pthread_mutex_unlock(&s->lock);
	}
	return stale ? ESTALE : EBADF;
}

void fs_inodes_drop_export(struct fs_server *s, unsigned export)
{
	/* A walk of every bucket: removal is rare (a pod's container ended),
	 * and no inode carries a per-export list for it. */
	for (unsigned b = 0; b < FS_HASH_BUCKETS; b++) {
		for (struct fs_inode **pp = &s->by_id[b]; *pp;) {
			struct fs_inode *i = *pp;
			if (i->export != export) {
				pp = &i->next_by_id;
				continue;
			}
			*pp = i->next_by_id;
			i->next_by_id = NULL;
			if (i->keyed)
				unkey(s, i);
			i->gone = true;
			maybe_free(s, i);      /* or at its last fs_inode_put */
		}
	}
}

static void insert(struct fs_server *s, struct fs_inode *i)
{
	unsigned b = id_bucket(i->nodeid), k = key_bucket(i->dev, i->ino, i->export);

	i->next_by_id = s->by_id[b];
	s->by_id[b] = i;
	i->next_by_key = s->by_key[k];
	s->by_key[k] = i;
	i->keyed = true;
	s->ninodes++;
}

static struct fs_inode *new_inode(struct fs_server *s, int fd, const struct stat *st, unsigned export)
{
	struct fs_inode *i = calloc(1, sizeof(*i));

	if (!i)
		return NULL;
	uint64_t nodeid = (uint64_t)export << FS_NODEID_SLOT_SHIFT | s->next_seq++;
	*i = (struct fs_inode){ .nodeid = nodeid, .fd = fd, .dev = st->st_dev, .ino = st->st_ino,
				.type = st->st_mode & S_IFMT, .export = export };
	insert(s, i);
	s->open_fds++;
	s->exports[export].nobjs++;
	return i;
}

struct fs_inode *fs_inode_found(struct fs_server *s, int fd, const struct stat *st,
				unsigned export, bool fresh, int *err)
{
	pthread_mutex_lock(&s->lock);
	/* The parent is held, so the slot is still its export's: a removal
	 * since the request began leaves it DRAINING, never reused. */
	if (s->exports[export].state != FS_EXPORT_LIVE) {
		pthread_mutex_unlock(&s->lock);
		close(fd);
		*err = ESTALE;
		return NULL;
	}
	struct fs_inode *i = s->by_key[key_bucket(st->st_dev, st->st_ino, export)];
	while (i && (i->dev != st->st_dev || i->ino != st->st_ino || i->export != export))
		i = i->next_by_key;
	if (i && fresh && !i->export_root) {
		unkey(s, i);      /* the client's references to the dead file stay valid */
		i = NULL;
	}
	if (i && i->fd < 0) {
		i->fd = fd;       /* closed for the budget: this is its file again */
		s->open_fds++;
	} else if (i) {
		close(fd);
	} else if (!(i = new_inode(s, fd, st, export))) {
		close(fd);
		*err = ENOMEM;
	}
	if (i) {
		/* Held for the caller, who reads it after we unlock: a FORGET of
		 * a node id guessed before the reply, or a removal of the
		 * export, would otherwise free it under them. */
		i->nlookup++;
		i->refs++;
		lru_remove(s, i);
		evict(s);
	}
	pthread_mutex_unlock(&s->lock);
	return i;
}

int fs_inode_add_export_root(struct fs_server *s, int fd, const struct stat *st, unsigned export,
			     struct fs_inode **out)
{
	struct fs_inode *i = new_inode(s, fd, st, export);

	if (!i)
		return -1;
	i->export_root = true;
	*out = i;
	return 0;
}

void fs_inode_forget(struct fs_server *s, uint64_t nodeid, uint64_t nlookup)
{
	pthread_mutex_lock(&s->lock);
	struct fs_inode *i = nodeid == FS_ROOT_ID ? NULL : by_id_locked(s, nodeid);
	if (i) {
		/* A client forgetting more than it looked up is confused: clamp. */
		i->nlookup = nlookup < i->nlookup ? i->nlookup - nlookup : 0;
		maybe_free(s, i);
	}
	pthread_mutex_unlock(&s->lock);
}

void fs_inodes_free(struct fs_server *s)
{
	for (unsigned b = 0; b < FS_HASH_BUCKETS; b++) {
		struct fs_inode *i = s->by_id[b];
		while (i) {
			struct fs_inode *next = i->next_by_id;
			if (i->fd >= 0)
				close(i->fd);
			free(i->handle);
			free(i);
			i = next;
		}
		s->by_id[b] = s->by_key[b] = NULL;
	}
	s->ninodes = s->open_fds = 0;
	s->lru_head = s->lru_tail = NULL;
}

/* --- handles ------------------------------------------------------------- */

/* fh = generation << 32 | (slot + 1): 0 is never a valid handle. */
static uint64_t make_fh(uint32_t slot, uint32_t gen) { return ((uint64_t)gen << 32) | (slot + 1); }

int fs_handle_new(struct fs_server *s, int fd, bool dir, bool synthetic, unsigned export,
		  uint64_t *fh)
{
	uint32_t slot;

	pthread_mutex_lock(&s->lock);
	/* The inode it was opened from is held, so the slot is still its
	 * export's (see fs_inode_found). */
	if (!synthetic && s->exports[export].state != FS_EXPORT_LIVE) {
		pthread_mutex_unlock(&s->lock);
		return -ESTALE;
	}
	if (!s->handles) {
		s->handles = calloc(FS_MAX_HANDLES, sizeof(*s->handles));
		s->free_slots = calloc(FS_MAX_HANDLES, sizeof(*s->free_slots));
		if (!s->handles || !s->free_slots) {
			free(s->handles);
			free(s->free_slots);
			s->handles = NULL;
			s->free_slots = NULL;
			pthread_mutex_unlock(&s->lock);
			return -ENOMEM;
		}
	}
	if (s->nfree) {
		slot = s->free_slots[--s->nfree];
	} else if (s->handles_high < s->max_handles) {
		slot = s->handles_high++;
		pthread_mutex_init(&s->handles[slot].dir_lock, NULL);
	} else {
		pthread_mutex_unlock(&s->lock);
		return -EMFILE;
	}
	struct fs_handle *h = &s->handles[slot];
	h->fd = fd;
	h->in_use = true;
	h->gen++;
	h->dir = dir;
	h->synthetic = synthetic;
	h->export = export;
	h->released = false;
	s->handles_used++;
	if (!synthetic)
		s->exports[export].nobjs++;
	*fh = make_fh(slot, h->gen);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static struct fs_handle *lookup_handle(struct fs_server *s, uint64_t fh, bool dir)
{
	uint32_t slot = (uint32_t)(fh & 0xffffffffu) - 1, gen = (uint32_t)(fh >> 32);

	if ((fh & 0xffffffffu) == 0 || slot >= s->handles_high)
		return NULL;
	struct fs_handle *h = &s->handles[slot];
	if (!h->in_use || h->gen != gen || h->released || h->dir != dir)
		return NULL;
	return h;
}

struct fs_handle *fs_handle_get(struct fs_server *s, uint64_t fh, bool dir)
{
	pthread_mutex_lock(&s->lock);
	struct fs_handle *h = lookup_handle(s, fh, dir);
	if (h)
		h->refs++;
	pthread_mutex_unlock(&s->lock);
	return h;
}

/* Lock held: the slot is free again once released and unused. */
static void maybe_close(struct fs_server *s, struct fs_handle *h)
{
	if (!h->released || h->refs)
		return;
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	h->in_use = false;
	s->free_slots[s->nfree++] = (uint32_t)(h - s->handles);
	s->handles_used--;
	if (!h->synthetic)
		export_obj_gone(s, h->export);
}

void fs_handle_put(struct fs_server *s, struct fs_handle *h)
{
	pthread_mutex_lock(&s->lock);
	h->refs--;
	maybe_close(s, h);
	pthread_mutex_unlock(&s->lock);
}

int fs_handle_release(struct fs_server *s, uint64_t fh, bool dir)
{
	pthread_mutex_lock(&s->lock);
	struct fs_handle *h = s->handles ? lookup_handle(s, fh, dir) : NULL;
	if (h) {
		h->released = true;
		maybe_close(s, h);
	}
	pthread_mutex_unlock(&s->lock);
	return h ? 0 : -EBADF;
}

void fs_handles_drop_export(struct fs_server *s, unsigned export)
{
	/* Released as by RELEASE: lookups of its fh fail from now on (EBADF),
	 * and the slot's generation moves on before anyone reuses it. */
	for (uint32_t k = 0; s->handles && k < s->handles_high; k++) {
		struct fs_handle *h = &s->handles[k];
		if (h->in_use && !h->synthetic && h->export == export && !h->released) {
			h->released = true;
			maybe_close(s, h);
		}
	}
}

void fs_handles_free(struct fs_server *s)
{
	for (uint32_t i = 0; s->handles && i < s->handles_high; i++) {
		if (s->handles[i].in_use && s->handles[i].fd >= 0)
			close(s->handles[i].fd);
		pthread_mutex_destroy(&s->handles[i].dir_lock);
	}
	free(s->handles);
	free(s->free_slots);
	s->handles = NULL;
	s->free_slots = NULL;
}
