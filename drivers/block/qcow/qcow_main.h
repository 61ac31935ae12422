/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qcow: definitions shared by the module's layers.
 *
 * Objects:
 *   struct qcow_device  one /dev/qcowN: gendisk, tag set, state, layers
 *   struct qcow_layer   one file of the chain: the top qcow2 image or a
 *                       backing layer (qcow2 or raw), opened by qcowctl
 *   struct qcow_image   the qcow2 state of a qcow2 layer: header, L1 table,
 *                       L2 slice cache, metadata regions, decompressor
 *   struct qcow_cache   LRU of L2 slices (qcow_cache.c)
 *
 * Lock order (outermost first):
 *   qcow_ctl_mutex (device index, attach/detach)
 *     -> qcow_device.lock (state machine)
 *       -> qcow_image.epoch_mutex (waiting for requests to drain)
 *         -> qcow_image.meta_lock (L1, L2 entries, refcounts, allocation)
 *           -> qcow_image.decomp_lock (last decompressed cluster)
 *             -> qcow_image.hdr_lock (header sector)
 *               -> qcow_cache.lock (spinlock, never held across I/O)
 * Data I/O of a write is done without meta_lock; metadata I/O (table
 * loads, write-back) is done with it held.
 */
#ifndef QCOW_MAIN_H
#define QCOW_MAIN_H

#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/errseq.h>
#include <linux/fs.h>
#include <linux/list.h>
#include <linux/llist.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/seqlock.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include <linux/qcow.h>

#include "qcow2_format.h"

#define QCOW_MAX_DEVICES_LIMIT	65536U	/* 16 minors each, 20-bit minors */
#define QCOW_SLICE_SIZE		4096U
#define QCOW_CACHE_MIN		(64U << 10)
#define QCOW_CACHE_DEFAULT_MIN	BIT(20)
#define QCOW_CACHE_DEFAULT_MAX	(32U << 20)
#define QCOW_CACHE_MAX		BIT_ULL(30)

struct qcow_cache;
struct qcow_image;

struct qcow_layer;

/**
 * struct qcow_layer_ops - how a layer's bytes are read and written
 * @read_iter: read @len bytes at @pos into @iter (advancing it); bytes
 *	       past the end read as zeros; 0 or -EIO
 * @read_async: start reading all of @iter at @pos (inside the file) with
 *		@iocb, as @write_async; optional
 * @write_iter: write @len bytes of @iter at @pos (advancing it), durable
 *		before returning when @fua; 0, -ENOSPC or -EIO
 * @write_async: start writing all of @iter at @pos with @iocb (owned by
 *		 the caller until @done runs); @done gets the byte count or
 *		 an error exactly once, possibly before this returns and
 *		 possibly in IRQ context; 0 (started) or -EAGAIN (not
 *		 possible for this I/O: nothing was done); optional
 * @size: current size of the layer's file in bytes
 * @flush: make every completed write durable; 0 or -EIO
 * @punch: deallocate a byte range (reads as zeros afterwards); 0 or errno
 * @truncate: set the file's size: growing adds a hole (reads as zeros,
 *	      takes no space), shrinking drops the tail; optional; 0 or errno
 *
 * The module uses qcow_file_layer_ops (a struct file); KUnit suites plug in
 * an in-memory image.
 */
struct qcow_layer_ops {
	int (*read_iter)(struct qcow_layer *l, struct iov_iter *iter,
			 size_t len, loff_t pos);
	int (*read_async)(struct qcow_layer *l, struct kiocb *iocb,
			  struct iov_iter *iter, loff_t pos,
			  void (*done)(struct kiocb *iocb, long ret));
	int (*write_iter)(struct qcow_layer *l, struct iov_iter *iter,
			  size_t len, loff_t pos, bool fua);
	int (*write_async)(struct qcow_layer *l, struct kiocb *iocb,
			   struct iov_iter *iter, loff_t pos,
			   void (*done)(struct kiocb *iocb, long ret));
	u64 (*size)(struct qcow_layer *l);
	int (*flush)(struct qcow_layer *l);
	int (*punch)(struct qcow_layer *l, loff_t pos, u64 len);
	int (*truncate)(struct qcow_layer *l, u64 size);
};

/**
 * struct qcow_layer - one file of the backing chain
 * @ops: I/O operations
 * @priv: private data of @ops (KUnit's in-memory image)
 * @file: the file, reference held by the device
 * @wb_err: the write-back errors of @file's mapping that @ops->flush has
 *	    reported (errseq), apart from the file's own cursor, which a
 *	    FUA write's fsync (IOCB_DSYNC) also advances
 * @format: QCOW_FMT_QCOW2 or QCOW_FMT_RAW
 * @dio: reads may use direct I/O (aligned, the file supports it)
 * @size: bytes the layer presents: the virtual size for qcow2, the file
 *	  size for raw; reads past it return zeros
 * @img: qcow2 state, NULL for raw
 * @backing: next layer down, or NULL
 * @depth: 0 for the top image
 */
struct qcow_layer {
	const struct qcow_layer_ops *ops;
	void *priv;
	struct file *file;
	errseq_t wb_err;
	u32 format;
	bool dio;
	u64 size;
	struct qcow_image *img;
	struct qcow_layer *backing;
	unsigned int depth;
};

/**
 * struct qcow_wop - a slow-path operation in flight on guest clusters
 * @node: entry in img->inflight
 * @first: first guest cluster index
 * @last: last guest cluster index
 */
struct qcow_wop {
	struct list_head node;
	u64 first;
	u64 last;
};

/**
 * struct qcow_wplan - what the slow path does to one guest cluster
 * @host: host cluster the data goes to (0: nothing to write)
 * @alloc: @host was allocated for this write
 * @rs: first byte of the cluster written to @host
 * @re: end of the bytes written to @host
 * @word: new L2 entry
 * @bitmap: new subcluster bitmap (extended L2)
 * @free_off: old host range to dereference (0: none)
 * @free_len: its length
 * @zeros: the cluster reads as zeros today (unallocated without a backing
 *	   file, or zero): copy-on-write copies zeros
 * @fresh: @host lies beyond the end of the file: it reads as zeros without
 *	   being written
 */
struct qcow_wplan {
	u64 host;
	bool alloc;
	bool zeros;
	bool fresh;
	u32 rs;
	u32 re;
	u64 word;
	u64 bitmap;
	u64 free_off;
	u64 free_len;
};

/**
 * struct qcow_wbatch - one slow-path write to the clusters of one L2 slice
 * @l: the top layer
 * @pos: guest offset
 * @len: bytes
 * @wop: the guest clusters, in img->inflight from planning to the end
 * @p: the plan, one entry per cluster
 * @nr: clusters
 * @ce: the L2 slice, held from planning to the end
 * @idx: the first cluster's entry in @ce
 */
struct qcow_wbatch {
	struct qcow_layer *l;
	u64 pos;
	size_t len;
	struct qcow_wop wop;
	struct qcow_wplan *p;
	unsigned int nr;
	struct qcow_cache_entry *ce;
	u32 idx;
};

/**
 * struct qcow_bounce - pages for the copy-on-write parts of slow-path
 *	writes: one cluster's worth, rounded up to whole pages
 * @node: in the pool's free list
 * @pages: the pages (struct qcow_bounce_pool.nr_pages of them)
 */
struct qcow_bounce {
	struct list_head node;
	struct page *pages[];
};

/**
 * struct qcow_bounce_pool - bounce elements kept for reuse
 * @lock: protects @free, @nr_free and @nr_total
 * @free: elements not in use
 * @nr_free: entries in @free
 * @nr_total: elements that exist, in use or free
 * @nr_pages: pages per element (0: no pool)
 * @keep: @free never holds more than this; never less than
 *	  QCOW_BOUNCE_RESERVE elements exist, so a writer that waits for
 *	  one always gets it (forward progress under memory pressure)
 * @max: no more than this many exist: writers beyond wait for one
 *	 (bounds the memory of copy-on-write writes in flight)
 * @wait: writers waiting for free elements
 *
 * Reuse also spares the zeroing a kernel with init_on_alloc gives every
 * new page, which costs as much as the copy itself.
 */
struct qcow_bounce_pool {
	spinlock_t lock;		/* @free, @nr_free, @nr_total */
	struct list_head free;
	unsigned int nr_free;
	unsigned int nr_total;
	unsigned int nr_pages;
	unsigned int keep;
	unsigned int max;
	wait_queue_head_t wait;
};

#define QCOW_BOUNCE_RESERVE	2

/* At most this many bytes per grouped slow-path data write. */
#define QCOW_AWGROUP_MAX	SZ_1M

/**
 * struct qcow_cow - the data of one run of contiguous new clusters of a
 *	slow-path write, as one I/O: the parts copied from the old contents
 *	are read into bounce pages (or are the zero page), the guest's bytes
 *	are referenced where they are
 * @iter: the data (a bvec iterator over @bv, or the guest's own iterator
 *	  when nothing is copied)
 * @host: where it goes in the image file
 * @len: bytes
 * @bv: the segments (NULL when nothing is copied)
 * @bounce: the bounce elements @bv points into
 * @nr_bounce: how many
 * @rpos: guest offset of the one read left to the caller (qcow_cow_build()
 *	  with @defer), into the first bytes of @bounce[0]
 * @rlen: its bytes (0: nothing left to read)
 * @rbv: its segments (at the end of @bv)
 * @nr_rbv: how many
 */
struct qcow_cow {
	struct iov_iter iter;
	u64 host;
	size_t len;
	struct bio_vec *bv;
	struct qcow_bounce *bounce[2];
	unsigned int nr_bounce;
	u64 rpos;
	size_t rlen;
	struct bio_vec *rbv;
	unsigned int nr_rbv;
};

/**
 * struct qcow_awrite - a slow-path write of one cluster whose data goes to
 *	the image file as an asynchronous direct write
 * @b: the batch
 * @plan: its plan (@b.p points here)
 * @cow: the data written, with what is copied around the guest's bytes
 * @iocb: the copy-on-write read, then the direct write
 * @snode: in img->aw_submit until the write is started
 * @node: in img->aw_done once the write completed
 * @ret: the write's result
 * @rerr: -EIO when the copy-on-write read failed (nothing was written)
 * @err: what the request gets
 * @done: called by the image's completion work (process context) once the
 *	  L2 entry is updated, or the new cluster given back on error
 * @nowait: set by the caller that must not wait for I/O (the request
 *	    dispatcher): qcow_layer_write_async() leaves what would wait to
 *	    the caller (-EAGAIN) or to @work
 * @work: reads what is copied, when @nowait and that read cannot be
 *	  started asynchronously
 */
struct qcow_awrite {
	struct qcow_wbatch b;
	struct qcow_wplan plan;
	struct qcow_cow cow;
	struct kiocb iocb;
	struct llist_node snode;
	struct llist_node node;
	long ret;
	int rerr;
	int err;
	void (*done)(struct qcow_awrite *aw, int err);
	bool nowait;
	struct work_struct work;
};

/**
 * struct qcow_image - qcow2 state of one qcow2 layer
 * @layer: the layer this image belongs to
 * @qi: parsed first cluster (header and extensions)
 * @hdr: shortcut to @qi->hdr
 * @file_size: image file size at attach
 * @l1: active L1 table as read from disk (big endian, never converted)
 * @regions: header-level metadata regions, to refuse data pointers into them
 * @nr_regions: entries in @regions
 * @cache: L2 slice cache
 * @slice_size: bytes per L2 slice
 * @decomp_lock: protects the decompressor and the last-cluster cache
 * @decomp_buf: last decompressed cluster
 * @decomp_valid: @decomp_buf holds the cluster at @decomp_host
 * @decomp_host: host offset of the compressed data in @decomp_buf
 * @comp_buf: compressed input (2 clusters + a sector)
 * @zlib_ws: inflate workspace
 * @zstd_ws: zstd stream workspace
 * @zstd_ws_size: bytes in @zstd_ws
 * @corrupt: metadata inconsistency was found; reported once
 * @stopped: a header write or a flush of the image file failed, so what
 *	     the disk holds is unknown: no more writes of any kind (see
 *	     qcow_image_stop())
 *
 * Read-write state (qcow_refcount.c, qcow_write.c), unused when read-only:
 * @writable: attached read-write
 * @lazy_refcounts: the image has the lazy refcounts compatible bit
 * @meta_lock: serializes every metadata change (see the lock order)
 * @l2_seq: bumped around L2 entry updates, so lock-free readers of the
 *	    cache never decode half of an extended entry
 * @l1_dirty: bitmap of 512-byte L1 sectors changed in memory
 * @reftable: refcount table (big endian, capacity @reftable_entries)
 * @reftable_entries: entries in @reftable
 * @rcache: refcount block slice cache
 * @free_hint: every cluster below it has a nonzero refcount
 * @nb_clusters: clusters in use by the file: everything at and beyond it
 *		 is free (the allocation end)
 * @meta: clusters known to hold metadata (tables, refcount blocks); data
 *	  writes into them are refused
 * @inflight: slow-path operations in progress (struct qcow_wop)
 * @inflight_wq: woken when one finishes
 * @frees: clusters to dereference once their last on-disk reference is gone
 * @nr_frees: entries used in @frees
 * @max_frees: entries allocated in @frees
 * @hdr_lock: serializes header sector writes
 * @hdr_sector: the first sector of the file, as last written
 * @dirty_set: the dirty bit is set on disk (lazy refcounts)
 * @epoch: requests in flight, per epoch (see qcow_epoch_wait())
 * @epoch_cur: current epoch
 * @epoch_mutex: serializes epoch flips
 * @epoch_wq: woken when a request of an old epoch completes
 * @epoch_waiting: someone is waiting on @epoch_wq
 * @wb_work: background write-back a few seconds after a metadata change,
 *	     so that unflushed metadata and queued releases do not linger
 * @file_open_size: the file's size at attach
 * @file_ahead: the file was grown (a hole) to this size ahead of the
 *		allocation end, so that data writes to new clusters do not
 *		extend it (0: never); trimmed back at detach
 * @shadow: refcount changes being prepared for a header switch
 *	    (qcow_shadow_begin()); real changes are mirrored into it
 * @aw_wq: where @aw_work runs (the device's, not the one requests run on:
 *	   those may wait for it); NULL: slow-path writes are all synchronous
 * @aw_submit: asynchronous slow-path writes whose data write is to be
 *	       started (qcow_awrite_queue())
 * @aw_starting: bit 0: a writer is starting the writes of @aw_submit
 * @aw_done: asynchronous slow-path writes whose data write completed
 * @aw_work: finishes them (qcow_awrite_work())
 * @aw_start_work: starts the writes of @aw_submit for the completions of
 *		   copy-on-write reads (qcow_awrite_start_work())
 * @bounce: pages for copy-on-write (read-write images)
 */
struct qcow_image {
	struct qcow_layer *layer;
	struct qcow2_image *qi;
	struct qcow2_header *hdr;
	u64 file_size;
	__be64 *l1;
	struct qcow2_region regions[8];
	unsigned int nr_regions;
	struct qcow_cache *cache;
	u32 slice_size;

	struct mutex decomp_lock;	/* the decompressor and decomp_* */
	void *decomp_buf;
	bool decomp_valid;
	u64 decomp_host;
	void *comp_buf;
	void *zlib_ws;
	void *zstd_ws;
	size_t zstd_ws_size;

	atomic_t corrupt;
	atomic_t stopped;

	bool writable;
	bool lazy_refcounts;
	struct mutex meta_lock;		/* see the lock order */
	seqcount_mutex_t l2_seq;
	unsigned long *l1_dirty;
	__be64 *reftable;
	u64 reftable_entries;
	struct qcow_cache *rcache;
	u64 free_hint;
	u64 nb_clusters;
	struct xarray meta;
	struct list_head inflight;
	wait_queue_head_t inflight_wq;
	struct qcow_free *frees;
	unsigned int nr_frees;
	unsigned int max_frees;
	struct mutex hdr_lock;		/* header sector */
	u8 *hdr_sector;
	bool dirty_set;
	struct qcow_epoch_count __percpu *epoch;
	unsigned int epoch_cur;
	struct mutex epoch_mutex;	/* epoch flips */
	wait_queue_head_t epoch_wq;
	atomic_t epoch_waiting;
	struct delayed_work wb_work;
	u64 file_open_size;
	u64 file_ahead;
	struct qcow_shadow *shadow;
	struct workqueue_struct *aw_wq;
	struct llist_head aw_submit;
	unsigned long aw_starting;
	struct llist_head aw_done;
	struct work_struct aw_work;
	struct work_struct aw_start_work;
	struct qcow_bounce_pool bounce;
};

/**
 * struct qcow_free - clusters whose reference is dropped at the next flush
 * @start: first cluster index
 * @nr: clusters
 */
struct qcow_free {
	u64 start;
	u64 nr;
};

/**
 * struct qcow_epoch_count - per-CPU request counts of the two epochs
 * @enter: requests that entered each epoch on this CPU
 * @exit: requests that left each epoch on this CPU
 */
struct qcow_epoch_count {
	unsigned long enter[2];
	unsigned long exit[2];
};

enum qcow_state {
	QCOW_STATE_BOUND,	/* attached, serving I/O */
	QCOW_STATE_RUNDOWN,	/* detach in progress */
};

/**
 * struct qcow_hwq - the requests of one hardware queue waiting for its
 *	dispatcher (qcow_dev.c)
 * @cmds: queued by queue_rq, taken all at once by @work
 * @work: the dispatcher, on the device's workqueue
 * @dev: the device
 */
struct qcow_hwq {
	struct llist_head cmds;
	struct work_struct work;
	struct qcow_device *dev;
};

/**
 * struct qcow_device - one /dev/qcowN
 * @index: N
 * @lock: protects @state and @autoclear
 * @state: enum qcow_state
 * @autoclear: detach when the last opener closes
 * @read_only: the disk is read-only
 * @disk: the gendisk
 * @tag_set: blk-mq tag set, one hardware queue per CPU
 * @wq: workqueue requests are handed to
 * @aw_wq: workqueue finishing asynchronous allocating writes
 *	   (img->aw_work of the top image)
 * @hwq: one dispatcher per hardware queue
 * @top: top layer (the attached image)
 * @nr_layers: layers in the chain, top included
 * @layers: the chain, top first
 * @remove_work: deferred detach after the last close
 */
struct qcow_device {
	int index;
	struct mutex lock;		/* state, autoclear */
	enum qcow_state state;
	bool autoclear;
	bool read_only;
	struct gendisk *disk;
	struct blk_mq_tag_set tag_set;
	struct workqueue_struct *wq;
	struct workqueue_struct *aw_wq;
	struct qcow_hwq *hwq;
	struct qcow_layer *top;
	struct work_struct remove_work;
	unsigned int nr_layers;
	struct qcow_layer layers[];
};

/**
 * struct qcow_cmd - per-request state (blk-mq PDU)
 * @node: in its hardware queue's qcow_hwq.cmds until dispatched
 * @work: the work item running the request when it may wait
 * @iocb: kiocb of the asynchronous direct read fast path
 * @aw: an allocating write finished asynchronously (qcow_layer_write_async())
 * @bvec: segment array when the request has several bios, else NULL
 * @sts: status the request completes with
 * @epoch: the image epoch the request entered, or -1
 */
struct qcow_cmd {
	struct llist_node node;
	struct work_struct work;
	struct kiocb iocb;
	struct qcow_awrite aw;
	struct bio_vec *bvec;
	blk_status_t sts;
	int epoch;
};

/* qcow_io.c */
extern const struct qcow_layer_ops qcow_file_layer_ops;
int qcow_file_read(struct qcow_layer *l, void *buf, size_t len, loff_t pos);
bool qcow_layer_can_write_async(const struct qcow_layer *l);
int qcow_file_read_async(struct qcow_layer *l, struct kiocb *iocb,
			 struct iov_iter *iter, loff_t pos,
			 void (*done)(struct kiocb *iocb, long ret));
int qcow_file_rw_async(struct qcow_layer *l, struct kiocb *iocb,
		       struct iov_iter *iter, loff_t pos, int flags,
		       void (*done)(struct kiocb *iocb, long ret));
int qcow_file_write(struct qcow_layer *l, const void *buf, size_t len,
		    loff_t pos);
bool qcow_file_can_dio(struct file *file);

/**
 * qcow_file_read_iter() - read bytes of a layer's file
 * @l: layer
 * @iter: destination, advanced by @len on success
 * @len: bytes
 * @pos: file offset
 *
 * Return: 0 or -EIO; bytes past the end of the file read as zeros.
 */
static inline int qcow_file_read_iter(struct qcow_layer *l,
				      struct iov_iter *iter, size_t len,
				      loff_t pos)
{
	return l->ops->read_iter(l, iter, len, pos);
}

/* qcow_cache.c */
struct qcow_cache_entry;
struct qcow_cache *qcow_cache_create(struct qcow_layer *l, u32 slice_size,
				     u64 bytes);
void qcow_cache_destroy(struct qcow_cache *c);
struct qcow_cache_entry *qcow_cache_get(struct qcow_cache *c, u64 offset);
struct qcow_cache_entry *qcow_cache_get_cached(struct qcow_cache *c,
					       u64 offset);
void qcow_cache_put(struct qcow_cache *c, struct qcow_cache_entry *e);
const void *qcow_cache_data(struct qcow_cache_entry *e);
u64 qcow_cache_bytes(struct qcow_cache *c);
void *qcow_cache_data_w(struct qcow_cache_entry *e);
void qcow_cache_mark_dirty(struct qcow_cache *c, struct qcow_cache_entry *e);
struct qcow_cache_entry *qcow_cache_get_new(struct qcow_cache *c, u64 offset,
					    const void *data);
int qcow_cache_read(struct qcow_cache *c, u64 offset, void *buf, u64 len);
void qcow_cache_drop(struct qcow_cache *c, u64 offset, u64 len);
unsigned int qcow_cache_nr_dirty(struct qcow_cache *c);
unsigned int qcow_cache_max(struct qcow_cache *c);
int qcow_cache_writeback(struct qcow_cache *c);
void qcow_cache_stats(struct qcow_cache *c, u64 *hits, u64 *misses);

/* qcow_map.c */

/**
 * struct qcow_extent - a run of guest bytes that read the same way
 * @type: what the bytes are (QCOW2_SUBCLUSTER_*)
 * @copied: NORMAL data whose clusters all have the COPIED flag (refcount
 *	    one): a write may go straight to @host
 * @len: bytes in the run
 * @host: host offset of the first byte (NORMAL)
 * @comp_offset: compressed data offset (COMPRESSED)
 * @comp_len: compressed data span (COMPRESSED)
 */
struct qcow_extent {
	enum qcow2_subcluster_type type;
	bool copied;
	u64 len;
	u64 host;
	u64 comp_offset;
	u64 comp_len;
};

int qcow_image_open(struct qcow_layer *l, u64 cache_bytes);
void qcow_image_close(struct qcow_image *img);
int qcow_map(struct qcow_image *img, u64 pos, u64 len, struct qcow_extent *ext);
int qcow_map_nowait(struct qcow_image *img, u64 pos, u64 len,
		    struct qcow_extent *ext);
struct qcow_cache_entry *qcow_l2_slice(struct qcow_image *img, u64 l2off,
				       u64 pos, u32 *idx, bool nowait);
void qcow_image_corrupt(struct qcow_image *img, const char *fmt, ...);

/* qcow_refcount.c */
int qcow_refcount_open(struct qcow_image *img);
void qcow_refcount_close(struct qcow_image *img);
int qcow_refcount_get(struct qcow_image *img, u64 cluster, u64 *refcount);
int qcow_refcount_add(struct qcow_image *img, u64 cluster, u64 nr, int delta);
int qcow_alloc_clusters(struct qcow_image *img, u64 nr, u64 *host, u64 *got);
int qcow_free_later(struct qcow_image *img, u64 offset, u64 len);
int qcow_frees_apply(struct qcow_image *img, struct qcow_free *f,
		     unsigned int nr);
bool qcow_meta_overlaps(struct qcow_image *img, u64 offset, u64 len);
void qcow_meta_mark(struct qcow_image *img, u64 offset, u64 len);
int qcow_reftable_write_entry(struct qcow_image *img, u64 index);
struct qcow2_region *qcow_region_find(struct qcow_image *img, const char *what);
void qcow_region_move(struct qcow_image *img, const char *what, u64 old_off,
		      u64 off, u64 len);
int qcow_table_write_new(struct qcow_image *img, const void *data, size_t len,
			 u64 *off);

/**
 * struct qcow_commit - a new metadata root, switched to in one header write
 * @l1: the new active L1 table, @l1_size entries in a kvzalloc'ed buffer of
 *	whole sectors; the image owns it once the commit succeeds
 * @l1_size: entries
 * @l1_off: where it was written (qcow_table_write_new()), 0 when empty
 * @size: the virtual size that goes with it
 * @snap_off: the snapshot table's offset (the current one, or a new one)
 * @snap_len: its length in bytes
 * @nb_snap: its entries
 * @free_old_l1: the old active L1 table is released (false: a snapshot's
 *		 entry names it now)
 * @old_l1: receives the old active table on success (the caller kvfree()s it)
 */
struct qcow_commit {
	__be64 *l1;
	u32 l1_size;
	u64 l1_off;
	u64 size;
	u64 snap_off;
	u64 snap_len;
	u32 nb_snap;
	bool free_old_l1;
	__be64 *old_l1;
};

int qcow_shadow_begin(struct qcow_image *img);
void qcow_shadow_end(struct qcow_image *img);
int qcow_shadow_add(struct qcow_image *img, u64 cluster, u64 nr, int delta);
int qcow_shadow_get(struct qcow_image *img, u64 cluster, u64 *refcount);
int qcow_shadow_commit(struct qcow_image *img, struct qcow_commit *c);

/* qcow_write.c */
int qcow_image_open_rw(struct qcow_image *img);
void qcow_image_close_rw(struct qcow_image *img);
int qcow_header_write(struct qcow_image *img);
void qcow_image_stop(struct qcow_image *img, const char *what, int err);
int qcow_meta_flush(struct qcow_image *img);

/**
 * qcow_image_failed() - writes are refused: corrupt or stopped
 * @img: image
 *
 * Return: true when no write may reach the image any more.
 */
static inline bool qcow_image_failed(struct qcow_image *img)
{
	return atomic_read(&img->corrupt) || atomic_read(&img->stopped);
}

int qcow_layer_write_async(struct qcow_layer *l, u64 pos, struct iov_iter *iter,
			   size_t len, struct qcow_awrite *aw);
void qcow_awrite_work(struct work_struct *work);
void qcow_awrite_start_work(struct work_struct *work);
int qcow_bounce_init(struct qcow_bounce_pool *pool, u32 cluster_size);
void qcow_bounce_exit(struct qcow_bounce_pool *pool);
void qcow_bounce_get(struct qcow_bounce_pool *pool, unsigned int n,
		     struct qcow_bounce **out);
void qcow_bounce_put(struct qcow_bounce_pool *pool, struct qcow_bounce *b);
int qcow_layer_write(struct qcow_layer *l, u64 pos, struct iov_iter *iter,
		     size_t len, bool fua);
int qcow_layer_zero(struct qcow_layer *l, u64 pos, u64 len, bool discard,
		    bool unmap);
int qcow_image_flush(struct qcow_image *img, bool frees);
void qcow_writeback_work(struct work_struct *work);
int qcow_meta_begin(struct qcow_image *img);
int qcow_meta_writeback(struct qcow_image *img, bool all);
int qcow_meta_writeback_flat(struct qcow_image *img);
void qcow_l1_set(struct qcow_image *img, u64 l1i, u64 entry);
int qcow_l1_replace(struct qcow_image *img, __be64 *l1, u32 n, u64 size,
		    __be64 **old);
int qcow_image_resize(struct qcow_image *img, u64 size);
void qcow_l2_update(struct qcow_image *img, struct qcow_cache_entry *ce,
		    u32 idx, u64 word, u64 bitmap);

/* qcow_snapshot.c */
int qcow_snapshot_ioctl(struct qcow_device *dev, struct block_device *bdev,
			fmode_t mode, unsigned int cmd, void __user *arg);
int qcow_snapshot_create(struct qcow_image *img, struct qcow_snapshot_cmd *c);
int qcow_snapshot_delete(struct qcow_image *img, struct qcow_snapshot_cmd *c);
int qcow_snapshot_apply_img(struct qcow_image *img, struct qcow_snapshot_cmd *c);
int qcow_epoch_enter(struct qcow_image *img);
void qcow_epoch_exit(struct qcow_image *img, int epoch);

/* qcow_read.c */
int qcow_layer_read_async(struct qcow_layer *l, u64 pos, struct iov_iter *iter,
			  struct kiocb *iocb,
			  void (*done)(struct kiocb *iocb, long ret),
			  bool nowait);
int qcow_layer_read(struct qcow_layer *l, u64 pos, struct iov_iter *iter,
		    size_t len);
int qcow_decompress_init(struct qcow_image *img);
void qcow_decompress_free(struct qcow_image *img);

/* qcow_dev.c */
extern unsigned int qcow_max_devices;
int qcow_dev_init(void);
void qcow_dev_exit(void);
int qcow_dev_attach(struct qcow_attach *a, const struct qcow_layer_desc *descs);
int qcow_dev_detach(const struct qcow_detach *d);

#endif /* QCOW_MAIN_H */
