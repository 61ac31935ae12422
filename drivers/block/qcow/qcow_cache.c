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
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/hash.h>
#include <linux/log2.h>
#include <linux/slab.h>
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
		if (e->refs)
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
