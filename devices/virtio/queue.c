#include "devices/virtio/queue.h"

#include <errno.h>
#include <string.h>

/* Ring layout (virtio 1.x §2.7): avail = flags, idx, ring[size], used_event;
 * used = flags, idx, {id, len}[size], avail_event. Little-endian, as is x86. */
#define DESC_BYTES 16u
#define AVAIL_RING_OFF 4u
#define USED_RING_OFF 4u
#define USED_ELEM_BYTES 8u

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static uint16_t load16(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE);
}

static void store16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, v, __ATOMIC_RELEASE);
}

static uint64_t avail_bytes(uint16_t size) { return AVAIL_RING_OFF + 2ull * size + 2; }
static uint64_t used_bytes(uint16_t size) { return USED_RING_OFF + 8ull * size + 2; }

static uint8_t *ring_slice(const struct guest_mem *mem, uint64_t gpa, uint64_t len,
			   uint64_t align, const char *what, struct rv_err *err)
{
	if (gpa % align) {
		rv_failx(err, EINVAL, "virtqueue %s at 0x%llx is not %llu-byte aligned", what,
			 (unsigned long long)gpa, (unsigned long long)align);
		return NULL;
	}
	uint8_t *p = guest_mem_slice(mem, gpa, len);
	if (!p)
		rv_failx(err, EINVAL, "virtqueue %s [0x%llx, +%llu) is outside guest RAM", what,
			 (unsigned long long)gpa, (unsigned long long)len);
	return p;
}

int virtq_activate(struct virtq *q, const struct guest_mem *mem, uint16_t max_size,
		   struct rv_err *err)
{
	if (q->size == 0 || q->size > max_size || (q->size & (q->size - 1)))
		return rv_failx(err, EINVAL, "virtqueue size %u: must be a power of two up to %u",
				q->size, max_size);
	q->mem = mem;
	q->desc = ring_slice(mem, q->desc_gpa, (uint64_t)DESC_BYTES * q->size, 16, "descriptor table", err);
	q->avail = q->desc ? ring_slice(mem, q->avail_gpa, avail_bytes(q->size), 2, "available ring", err) : NULL;
	q->used = q->avail ? ring_slice(mem, q->used_gpa, used_bytes(q->size), 4, "used ring", err) : NULL;
	if (!q->used) {
		q->desc = q->avail = NULL;   /* all rings or none: pop and push test one */
		return -1;
	}
	q->last_avail = q->used_idx = q->signalled_used = 0;
	q->broken = false;
	return 0;
}

void virtq_reset(struct virtq *q)
{
	*q = (struct virtq){ 0 };
}

static int chain_add(struct virtq *q, struct virtq_chain *c, const struct desc *d, struct rv_err *err)
{
	bool writable = d->flags & VIRTQ_DESC_F_WRITE;

	if (!writable && c->nwrite)
		return rv_failx(err, EPROTO, "chain %u: a device-readable buffer follows a writable one",
				c->head);
	if (d->len == 0)
		return 0;
	if (c->nread + c->nwrite >= VIRTQ_MAX_CHAIN_SEGS)
		return rv_failx(err, EPROTO, "chain %u has more than %u buffers", c->head, VIRTQ_MAX_CHAIN_SEGS);
	void *p = guest_mem_slice(q->mem, d->addr, d->len);
	if (!p)
		return rv_failx(err, EFAULT, "chain %u: buffer [0x%llx, +%u) is outside guest RAM", c->head,
				(unsigned long long)d->addr, d->len);
	uint64_t *total = writable ? &c->write_bytes : &c->read_bytes;
	if (*total + d->len > VIRTQ_MAX_CHAIN_BYTES)
		return rv_failx(err, EPROTO, "chain %u is larger than %llu bytes", c->head,
				(unsigned long long)VIRTQ_MAX_CHAIN_BYTES);
	*total += d->len;
	c->iov[c->nread + c->nwrite] = (struct iovec){ p, d->len };
	if (writable)
		c->nwrite++;
	else
		c->nread++;
	return 0;
}

/* Switches the walk to an indirect table; only the last direct descriptor may
 * be indirect, and an indirect table may not point to another one. `nested`
 * says whether the walk is in an indirect table already: not the table's
 * address, which the guest may set to the descriptor table's own. */
static int enter_indirect(struct virtq *q, struct virtq_chain *c, const struct desc *d, bool nested,
			  const uint8_t **table, uint32_t *table_len, struct rv_err *err)
{
	if (nested)
		return rv_failx(err, EPROTO, "chain %u: nested indirect table", c->head);
	if (d->flags & VIRTQ_DESC_F_NEXT)
		return rv_failx(err, EPROTO, "chain %u: indirect descriptor also has NEXT", c->head);
	if (d->len == 0 || d->len % DESC_BYTES || d->len / DESC_BYTES > VIRTQ_MAX_SIZE)
		return rv_failx(err, EPROTO, "chain %u: indirect table of %u bytes (need a multiple "
				"of 16, at most %u entries)", c->head, d->len, VIRTQ_MAX_SIZE);
	*table = guest_mem_slice(q->mem, d->addr, d->len);
	if (!*table)
		return rv_failx(err, EFAULT, "chain %u: indirect table [0x%llx, +%u) is outside guest RAM",
				c->head, (unsigned long long)d->addr, d->len);
	*table_len = d->len / DESC_BYTES;
	return 0;
}

static int walk(struct virtq *q, struct virtq_chain *c, struct rv_err *err)
{
	const uint8_t *table = q->desc;
	uint32_t table_len = q->size, idx = c->head, steps = 0;
	bool in_indirect = false;
	struct desc d;

	for (;;) {
		if (++steps > table_len)
			return rv_failx(err, ELOOP, "chain %u is longer than its table of %u (a loop)",
					c->head, table_len);
		/* One copy: the guest may rewrite the entry while we look at it. */
		memcpy(&d, table + (size_t)idx * DESC_BYTES, sizeof(d));
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (enter_indirect(q, c, &d, in_indirect, &table, &table_len, err) < 0)
				return -1;
			in_indirect = true;
			idx = 0;
			steps = 0;
			continue;
		}
		if (chain_add(q, c, &d, err) < 0)
			return -1;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 1;
		idx = d.next;
		if (idx >= table_len)
			return rv_failx(err, EPROTO, "chain %u: next index %u is outside the table of %u",
					c->head, idx, table_len);
	}
}

int virtq_pop(struct virtq *q, struct virtq_chain *c, struct rv_err *err)
{
	if (!q->ready || q->broken || !q->avail)
		return 0;
	uint16_t avail_idx = load16(q->avail + 2);
	uint16_t pending = (uint16_t)(avail_idx - q->last_avail);
	if (pending == 0)
		return 0;
	if (pending > q->size) {
		q->broken = true;
		return rv_failx(err, EPROTO, "available index moved %u entries ahead, the queue has %u",
				pending, q->size);
	}
	uint16_t head = load16(q->avail + AVAIL_RING_OFF + 2u * (q->last_avail % q->size));
	if (head >= q->size) {
		q->broken = true;
		return rv_failx(err, EPROTO, "available ring names descriptor %u, the queue has %u",
				head, q->size);
	}
	q->last_avail++;
	c->head = head;
	c->nread = c->nwrite = 0;
	c->read_bytes = c->write_bytes = 0;
	return walk(q, c, err);
}

void virtq_unpop(struct virtq *q, uint16_t n)
{
	q->last_avail = (uint16_t)(q->last_avail - n);
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t written)
{
	uint8_t *e = q->used + USED_RING_OFF + USED_ELEM_BYTES * (q->used_idx % q->size);
	uint32_t id = head;

	memcpy(e, &id, 4);
	memcpy(e + 4, &written, 4);
	q->used_idx++;
	store16(q->used + 2, q->used_idx);
}

/* virtio 1.x §2.7.7.2: interrupt when used_event lies in (old, new]. */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

bool virtq_should_interrupt(struct virtq *q)
{
	if (!q->used || q->used_idx == q->signalled_used)
		return false;
	/* The used index must be visible before we read what the driver wants. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint16_t old = q->signalled_used;
	bool need;
	if (q->event_idx)
		need = need_event(load16(q->avail + AVAIL_RING_OFF + 2u * q->size), q->used_idx, old);
	else
		need = !(load16(q->avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	q->signalled_used = q->used_idx;
	return need;
}

bool virtq_enable_notify(struct virtq *q)
{
	return virtq_enable_notify_at(q, q->last_avail);
}

bool virtq_enable_notify_at(struct virtq *q, uint16_t seen)
{
	if (!q->ready || q->broken || !q->avail)
		return false;
	if (q->event_idx)
		store16(q->used + USED_RING_OFF + USED_ELEM_BYTES * q->size, seen);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return load16(q->avail + 2) != seen;
}

uint16_t virtq_avail_idx(const struct virtq *q) { return q->avail ? load16(q->avail + 2) : 0; }

uint16_t virtq_used_event(const struct virtq *q)
{
	return q->avail ? load16(q->avail + AVAIL_RING_OFF + 2u * q->size) : 0;
}

uint16_t virtq_avail_event(const struct virtq *q)
{
	return q->used ? load16(q->used + USED_RING_OFF + USED_ELEM_BYTES * q->size) : 0;
}

bool virtq_has_avail(const struct virtq *q)
{
	return q->ready && !q->broken && q->avail && load16(q->avail + 2) != q->last_avail;
}

static size_t chain_copy(const struct iovec *iov, unsigned n, size_t off, uint8_t *buf,
			 size_t len, bool to_chain)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t take = iov[i].iov_len - off;
		if (take > len - done)
			take = len - done;
		uint8_t *seg = (uint8_t *)iov[i].iov_base + off;
		if (to_chain)
			memcpy(seg, buf + done, take);
		else
			memcpy(buf + done, seg, take);
		done += take;
		off = 0;
	}
	return done;
}

size_t virtq_chain_read(const struct virtq_chain *c, size_t off, void *buf, size_t len)
{
	return chain_copy(c->iov, c->nread, off, buf, len, false);
}

size_t virtq_chain_write(const struct virtq_chain *c, size_t off, const void *buf, size_t len)
{
	return chain_copy(c->iov + c->nread, c->nwrite, off, (uint8_t *)buf, len, true);
}
