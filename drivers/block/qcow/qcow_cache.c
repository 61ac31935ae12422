// SPDX-License-Identifier: GPL-2.0
/*
 * qcow: metadata slice cache.
 *
 * L2 tables are cached in slices (4 KiB, or the cluster when smaller), the
 * lesson of QEMU's qcow2-cache.txt: a random read touches one entry of a
 * table, and loading 64 KiB or 2 MiB to use 8 bytes wastes both memory and
 * I/O.  The cache is a hash of slices keyed by file offset with an LRU list,
 * bounded by a byte budget set at attach.
 *
 * Concurrency: one spinlock protects the hash, the LRU and the reference
 * counts, and is never held across I/O.  A miss inserts a LOADING entry,
 * drops the lock and reads; concurrent lookups of the same slice take a
 * reference and sleep until the loader marks it VALID or ERROR.  Entries
 * with references are never evicted, so the budget may be exceeded by the
 * number of requests in flight.
 *
 * Writers (qcow_write.c, qcow_refcount.c) modify slice data only with the
 * image's meta_lock held, mark the slice dirty, and write dirty slices back
 * with qcow_cache_writeback() (also under meta_lock) when the write-back
 * ordering allows it.  A dirty slice is pinned: it is never evicted, since
 * evicting it would mean writing it out of order.  The owner keeps the
 * number of dirty slices bounded by writing back early.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/hash.h>
#include <linux/log2.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/vmalloc.h>

#include "qcow_main.h"

enum qcow_slice_state {
	QCOW_SLICE_LOADING,
	QCOW_SLICE_VALID,
	QCOW_SLICE_ERROR,
};

struct qcow_cache_entry {
	struct hlist_node hnode;
	struct list_head lru;
	u64 offset;
	unsigned int refs;
	bool hashed;
	bool dirty;
	int state;
	void *data;
};

struct qcow_cache {
	struct qcow_layer *layer;
	spinlock_t lock;		/* hash, lru, refs, nr, stats */
	struct hlist_head *hash;
	unsigned int hash_bits;
	struct list_head lru;		/* most recently used first */
	unsigned int nr;
	unsigned int max;
	unsigned int nr_dirty;
	u32 slice_size;
	wait_queue_head_t wait;
	u64 hits;
	u64 misses;
};

/**
 * qcow_cache_create() - create a slice cache for one image
 * @l: layer whose file the slices are read from
 * @slice_size: bytes per slice (512..4096, power of two)
 * @bytes: memory budget for slice data
 *
 * Return: the cache, or an ERR_PTR.
 */
struct qcow_cache *qcow_cache_create(struct qcow_layer *l, u32 slice_size,
				     u64 bytes)
{
	struct qcow_cache *c;
	unsigned int i;

	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c)
		return ERR_PTR(-ENOMEM);
	c->layer = l;
	c->slice_size = slice_size;
	c->max = max_t(u64, 4, div_u64(bytes, slice_size));
	c->hash_bits = ilog2(roundup_pow_of_two(c->max));
	c->hash = kvmalloc_array(1U << c->hash_bits, sizeof(*c->hash),
				 GFP_KERNEL);
	if (!c->hash) {
		kfree(c);
		return ERR_PTR(-ENOMEM);
	}
	for (i = 0; i < (1U << c->hash_bits); i++)
		INIT_HLIST_HEAD(&c->hash[i]);
	spin_lock_init(&c->lock);
	INIT_LIST_HEAD(&c->lru);
	init_waitqueue_head(&c->wait);
	return c;
}

static void qcow_cache_free_entry(struct qcow_cache_entry *e)
{
	kfree(e->data);
	kfree(e);
}

/**
 * qcow_cache_destroy() - free a cache; no entry may be in use
 * @c: cache (may be NULL)
 */
void qcow_cache_destroy(struct qcow_cache *c)
{
	struct qcow_cache_entry *e, *tmp;

	if (!c)
		return;
	list_for_each_entry_safe(e, tmp, &c->lru, lru) {
		WARN_ON(e->refs);
		list_del(&e->lru);
		qcow_cache_free_entry(e);
	}
	kvfree(c->hash);
	kfree(c);
}

static struct hlist_head *qcow_cache_bucket(struct qcow_cache *c, u64 offset)
{
	return &c->hash[hash_64(offset, c->hash_bits)];
}

static struct qcow_cache_entry *qcow_cache_lookup(struct qcow_cache *c,
						  u64 offset)
{
	struct qcow_cache_entry *e;

	lockdep_assert_held(&c->lock);
	hlist_for_each_entry(e, qcow_cache_bucket(c, offset), hnode)
		if (e->offset == offset)
			return e;
	return NULL;
}

static void qcow_cache_unhash(struct qcow_cache *c, struct qcow_cache_entry *e)
{
	lockdep_assert_held(&c->lock);
	hlist_del(&e->hnode);
	list_del(&e->lru);
	e->hashed = false;
	c->nr--;
}

/* Evict unreferenced entries from the LRU tail until within budget. */
static void qcow_cache_shrink(struct qcow_cache *c, struct list_head *victims)
{
	struct qcow_cache_entry *e, *tmp;

	lockdep_assert_held(&c->lock);
	list_for_each_entry_safe_reverse(e, tmp, &c->lru, lru) {
		if (c->nr <= c->max)
			break;
		if (e->refs || e->dirty)
			continue;
		qcow_cache_unhash(c, e);
		list_add(&e->lru, victims);
	}
}

static struct qcow_cache_entry *qcow_cache_wait(struct qcow_cache *c,
						struct qcow_cache_entry *e)
{
	wait_event(c->wait, READ_ONCE(e->state) != QCOW_SLICE_LOADING);
	if (READ_ONCE(e->state) == QCOW_SLICE_ERROR) {
		qcow_cache_put(c, e);
		return ERR_PTR(-EIO);
	}
	return e;
}

/**
 * qcow_cache_get_cached() - reference the slice at file offset @offset if
 *	it is in the cache and loaded
 * @c: cache
 * @offset: slice-aligned file offset
 *
 * For callers that must not sleep on I/O (the request dispatcher): a miss
 * loads nothing.  Does not sleep.
 *
 * Return: the entry (release with qcow_cache_put()), or ERR_PTR(-EAGAIN)
 * when it is not cached or still loading.
 */
struct qcow_cache_entry *qcow_cache_get_cached(struct qcow_cache *c,
					       u64 offset)
{
	struct qcow_cache_entry *e;

	spin_lock(&c->lock);
	e = qcow_cache_lookup(c, offset);
	if (e && READ_ONCE(e->state) == QCOW_SLICE_VALID) {
		e->refs++;
		list_move(&e->lru, &c->lru);
		c->hits++;
	} else {
		e = ERR_PTR(-EAGAIN);
	}
	spin_unlock(&c->lock);
	return e;
}

/**
 * qcow_cache_get() - reference the slice at file offset @offset
 * @c: cache
 * @offset: slice-aligned file offset
 *
 * Loads the slice on a miss.  May sleep.  The data stays valid until
 * qcow_cache_put().
 *
 * Return: the entry, ERR_PTR(-EIO) when the read failed or
 * ERR_PTR(-ENOMEM).
 */
struct qcow_cache_entry *qcow_cache_get(struct qcow_cache *c, u64 offset)
{
	struct qcow_cache_entry *e, *n, *tmp;
	LIST_HEAD(victims);
	int err;

	spin_lock(&c->lock);
	e = qcow_cache_lookup(c, offset);
	if (e) {
		e->refs++;
		list_move(&e->lru, &c->lru);
		c->hits++;
		spin_unlock(&c->lock);
		return qcow_cache_wait(c, e);
	}
	c->misses++;
	spin_unlock(&c->lock);

	n = kzalloc(sizeof(*n), GFP_NOIO);
	if (!n)
		return ERR_PTR(-ENOMEM);
	n->data = kmalloc(c->slice_size, GFP_NOIO);
	if (!n->data) {
		kfree(n);
		return ERR_PTR(-ENOMEM);
	}
	n->offset = offset;
	n->refs = 1;
	n->state = QCOW_SLICE_LOADING;

	spin_lock(&c->lock);
	e = qcow_cache_lookup(c, offset);
	if (e) {
		/* Lost a race with another loader: use its entry. */
		e->refs++;
		list_move(&e->lru, &c->lru);
		spin_unlock(&c->lock);
		qcow_cache_free_entry(n);
		return qcow_cache_wait(c, e);
	}
	hlist_add_head(&n->hnode, qcow_cache_bucket(c, offset));
	list_add(&n->lru, &c->lru);
	n->hashed = true;
	c->nr++;
	qcow_cache_shrink(c, &victims);
	spin_unlock(&c->lock);

	list_for_each_entry_safe(e, tmp, &victims, lru)
		qcow_cache_free_entry(e);

	err = qcow_file_read(c->layer, n->data, c->slice_size, offset);

	spin_lock(&c->lock);
	if (err) {
		/* Do not cache the failure: the next lookup retries. */
		if (n->hashed)
			qcow_cache_unhash(c, n);
		WRITE_ONCE(n->state, QCOW_SLICE_ERROR);
	} else {
		WRITE_ONCE(n->state, QCOW_SLICE_VALID);
	}
	spin_unlock(&c->lock);
	wake_up_all(&c->wait);
	if (err) {
		qcow_cache_put(c, n);
		return ERR_PTR(err);
	}
	return n;
}

/**
 * qcow_cache_put() - drop a reference taken by qcow_cache_get()
 * @c: cache
 * @e: entry
 */
void qcow_cache_put(struct qcow_cache *c, struct qcow_cache_entry *e)
{
	bool free_it;

	spin_lock(&c->lock);
	free_it = !--e->refs && !e->hashed;
	spin_unlock(&c->lock);
	if (free_it)
		qcow_cache_free_entry(e);
}

/**
 * qcow_cache_data() - the slice bytes of a referenced entry
 * @e: entry from qcow_cache_get()
 *
 * Return: the slice as read from disk (big endian).
 */
const void *qcow_cache_data(struct qcow_cache_entry *e)
{
	return e->data;
}

/**
 * qcow_cache_bytes() - memory budget of the cache
 * @c: cache
 *
 * Return: the budget in bytes (entries times slice size).
 */
u64 qcow_cache_bytes(struct qcow_cache *c)
{
	return (u64)c->max * c->slice_size;
}

/**
 * qcow_cache_stats() - hit and miss counters
 * @c: cache
 * @hits: lookups served from memory
 * @misses: lookups that read the disk
 */
void qcow_cache_stats(struct qcow_cache *c, u64 *hits, u64 *misses)
{
	spin_lock(&c->lock);
	*hits = c->hits;
	*misses = c->misses;
	spin_unlock(&c->lock);
}

/**
 * qcow_cache_data_w() - the slice bytes of a referenced entry, to modify
 * @e: entry from qcow_cache_get() or qcow_cache_get_new()
 *
 * The caller holds the owner's metadata lock and calls
 * qcow_cache_mark_dirty() after the change.
 *
 * Return: the slice (big endian).
 */
void *qcow_cache_data_w(struct qcow_cache_entry *e)
{
	return e->data;
}

/**
 * qcow_cache_mark_dirty() - record that a slice was modified
 * @c: cache
 * @e: referenced entry
 */
void qcow_cache_mark_dirty(struct qcow_cache *c, struct qcow_cache_entry *e)
{
	spin_lock(&c->lock);
	if (!e->dirty && e->hashed) {
		e->dirty = true;
		c->nr_dirty++;
	}
	spin_unlock(&c->lock);
}

/**
 * qcow_cache_get_new() - reference a slice whose disk content is being
 * replaced, without reading it
 * @c: cache
 * @offset: slice-aligned file offset
 * @data: the new content (slice size bytes), or NULL for zeros
 *
 * Used for freshly allocated tables: the caller writes the same content to
 * disk.  An entry already cached for @offset (a stale one, from before the
 * cluster was freed) gets the new content.
 *
 * Return: the entry (VALID, clean) or ERR_PTR(-ENOMEM).
 */
struct qcow_cache_entry *qcow_cache_get_new(struct qcow_cache *c, u64 offset,
					    const void *data)
{
	struct qcow_cache_entry *e, *n, *tmp;
	LIST_HEAD(victims);

	n = kzalloc(sizeof(*n), GFP_NOIO);
	if (!n)
		return ERR_PTR(-ENOMEM);
	n->data = kmalloc(c->slice_size, GFP_NOIO);
	if (!n->data) {
		kfree(n);
		return ERR_PTR(-ENOMEM);
	}
	if (data)
		memcpy(n->data, data, c->slice_size);
	else
		memset(n->data, 0, c->slice_size);
	n->offset = offset;
	n->refs = 1;
	n->state = QCOW_SLICE_VALID;

	spin_lock(&c->lock);
	e = qcow_cache_lookup(c, offset);
	if (e && e->state != QCOW_SLICE_LOADING) {
		/* Reuse the entry so that holders see the new bytes. */
		e->refs++;
		list_move(&e->lru, &c->lru);
		memcpy(e->data, n->data, c->slice_size);
		WRITE_ONCE(e->state, QCOW_SLICE_VALID);
		spin_unlock(&c->lock);
		qcow_cache_free_entry(n);
		return e;
	}
	if (e)
		qcow_cache_unhash(c, e);	/* its loader frees it */
	hlist_add_head(&n->hnode, qcow_cache_bucket(c, offset));
	list_add(&n->lru, &c->lru);
	n->hashed = true;
	c->nr++;
	qcow_cache_shrink(c, &victims);
	spin_unlock(&c->lock);
	list_for_each_entry_safe(e, tmp, &victims, lru)
		qcow_cache_free_entry(e);
	return n;
}

/**
 * qcow_cache_read() - copy a run of whole slices out of the cache
 * @c: cache
 * @offset: slice-aligned file offset
 * @buf: destination
 * @len: bytes, a multiple of the slice size
 *
 * Slices not cached are read in (and stay cached), as qcow_cache_get().
 *
 * Return: 0, -EIO or -ENOMEM.
 */
int qcow_cache_read(struct qcow_cache *c, u64 offset, void *buf, u64 len)
{
	struct qcow_cache_entry *e;
	u64 s;

	for (s = 0; s < len; s += c->slice_size) {
		e = qcow_cache_get(c, offset + s);
		if (IS_ERR(e))
			return PTR_ERR(e);
		memcpy(buf + s, qcow_cache_data(e), c->slice_size);
		qcow_cache_put(c, e);
	}
	return 0;
}

/**
 * qcow_cache_drop() - forget the slices of a freed file range
 * @c: cache
 * @offset: first byte
 * @len: bytes
 *
 * Dirty slices in the range are discarded without being written: the
 * range no longer holds metadata.  Entries in use stay valid for their
 * holders but are no longer found by lookups.
 */
void qcow_cache_drop(struct qcow_cache *c, u64 offset, u64 len)
{
	struct qcow_cache_entry *e;
	LIST_HEAD(victims);
	u64 off;

	spin_lock(&c->lock);
	for (off = round_down(offset, c->slice_size); off < offset + len;
	     off += c->slice_size) {
		e = qcow_cache_lookup(c, off);
		if (!e || e->state == QCOW_SLICE_LOADING)
			continue;
		if (e->dirty) {
			e->dirty = false;
			c->nr_dirty--;
		}
		qcow_cache_unhash(c, e);
		if (!e->refs)
			list_add(&e->lru, &victims);
	}
	spin_unlock(&c->lock);
	while (!list_empty(&victims)) {
		e = list_first_entry(&victims, struct qcow_cache_entry, lru);
		list_del(&e->lru);
		qcow_cache_free_entry(e);
	}
}

/**
 * qcow_cache_nr_dirty() - number of dirty slices
 * @c: cache
 *
 * Return: the count.
 */
unsigned int qcow_cache_nr_dirty(struct qcow_cache *c)
{
	return READ_ONCE(c->nr_dirty);
}

/**
 * qcow_cache_max() - number of slices the budget holds
 * @c: cache
 *
 * Return: the count.
 */
unsigned int qcow_cache_max(struct qcow_cache *c)
{
	return c->max;
}

static int qcow_cache_cmp(const void *a, const void *b)
{
	const struct qcow_cache_entry *x = *(struct qcow_cache_entry * const *)a;
	const struct qcow_cache_entry *y = *(struct qcow_cache_entry * const *)b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/**
 * qcow_cache_writeback() - write every dirty slice to the image file
 * @c: cache
 *
 * Called with the owner's metadata lock held, so slice contents do not
 * change underneath.  Slices are written in offset order (sorted), which
 * merges well in the file system.  Does not flush the file.
 *
 * Return: 0, or -EIO (the slices that failed stay dirty).
 */
int qcow_cache_writeback(struct qcow_cache *c)
{
	struct qcow_cache_entry *e, **v;
	unsigned int n = 0, i, nr;
	int err = 0, ret;

	spin_lock(&c->lock);
	nr = c->nr_dirty;
	spin_unlock(&c->lock);
	if (!nr)
		return 0;
	v = kvmalloc_array(nr, sizeof(*v), GFP_NOIO);
	if (!v)
		return -ENOMEM;
	spin_lock(&c->lock);
	list_for_each_entry(e, &c->lru, lru) {
		if (!e->dirty)
			continue;
		if (n == nr)
			break;
		e->refs++;
		v[n++] = e;
	}
	spin_unlock(&c->lock);
	sort(v, n, sizeof(*v), qcow_cache_cmp, NULL);

	for (i = 0; i < n; i++) {
		e = v[i];
		ret = qcow_file_write(c->layer, e->data, c->slice_size,
				      e->offset);
		spin_lock(&c->lock);
		if (!ret && e->dirty) {
			e->dirty = false;
			c->nr_dirty--;
		}
		spin_unlock(&c->lock);
		if (ret && !err)
			err = ret;
		qcow_cache_put(c, e);
	}
	kvfree(v);
	return err;
}
