// SPDX-License-Identifier: GPL-2.0
/*
 * qcow: /dev/qcowN devices.
 *
 * A device is created fully configured by one QCOW_CTL_ATTACH call and
 * destroyed by QCOW_CTL_DETACH (or on last close after a lazy detach).
 * States, changed under qcow_device.lock:
 *
 *   (attach) -> BOUND -> RUNDOWN -> (freed on the last gendisk reference)
 *
 * Requests: queue_rq cannot do image I/O itself (it may not sleep, and
 * image I/O does: metadata reads, backing files, decompression,
 * allocation).  Reads and writes go on their hardware queue's list, and
 * one work item per hardware queue, the dispatcher, takes the whole list
 * at once, as loop's worker does: one wake-up for a batch of requests,
 * whose I/O it submits under one plug.  The dispatcher does not wait for
 * I/O.  Reads and writes of allocated clusters (COPIED, for writes) whose
 * L2 slice is cached become one asynchronous direct I/O on the image file
 * that completes the request.  A write inside one cluster that needs a new
 * cluster (copy-on-write included) is planned and allocated, what is
 * copied around the guest's bytes is read asynchronously, the whole goes
 * out the same way, and the image's completion work updates the L2 entry
 * and completes the request (qcow_layer_write_async()).  Everything that
 * would wait (a slice to read, a write in flight on the same cluster,
 * anything else) is handed to the request's own work item, which does it
 * synchronously (qcow_read.c, qcow_write.c); so are flushes, discards and
 * write-zeroes, from queue_rq.  The request PDU holds both the list node
 * and the work item, so nothing is allocated per request in the common
 * single-bio case.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blk-mq.h>
#include <linux/file.h>
#include <linux/idr.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uio.h>

#include "qcow_main.h"

#define QCOW_PART_SHIFT		4
#define QCOW_QUEUE_DEPTH	128
#define QCOW_MAX_SECTORS	2048U	/* 1 MiB requests */

static int qcow_major;
static DEFINE_IDR(qcow_idr);
/* Serializes attach/detach and protects qcow_idr. */
static DEFINE_MUTEX(qcow_ctl_mutex);
/* Runs lazy detaches; destroyed (drained) at module exit. */
static struct workqueue_struct *qcow_remove_wq;
unsigned int qcow_max_devices = 256;

static void qcow_dev_remove_work(struct work_struct *work);

/* ------------------------------------------------------------------------
 * requests
 */

static void qcow_cmd_epoch_exit(struct qcow_device *dev, struct qcow_cmd *cmd)
{
	if (cmd->epoch >= 0)
		qcow_epoch_exit(dev->top->img, cmd->epoch);
	cmd->epoch = -1;
}

/* End @cmd with @err, leaving its epoch. */
static void qcow_cmd_end(struct qcow_device *dev, struct qcow_cmd *cmd, int err)
{
	qcow_cmd_epoch_exit(dev, cmd);
	if (err)
		cmd->sts = err == -ENOMEM ? BLK_STS_RESOURCE :
			   err == -EOPNOTSUPP ? BLK_STS_NOTSUPP : BLK_STS_IOERR;
	blk_mq_end_request(blk_mq_rq_from_pdu(cmd), cmd->sts);
}

/* An allocating write finished by qcow_awrite_work(), in process context. */
static void qcow_awrite_done(struct qcow_awrite *aw, int err)
{
	struct qcow_cmd *cmd = container_of(aw, struct qcow_cmd, aw);

	kfree(cmd->bvec);
	cmd->bvec = NULL;
	qcow_cmd_end(blk_mq_rq_from_pdu(cmd)->q->queuedata, cmd, err);
}

static void qcow_aio_done(struct kiocb *iocb, long ret)
{
	struct qcow_cmd *cmd = container_of(iocb, struct qcow_cmd, iocb);
	struct request *rq = blk_mq_rq_from_pdu(cmd);

	if (ret != blk_rq_bytes(rq)) {
		pr_err_ratelimited("%s: %s of %u bytes at sector %llu failed: %ld\n",
				   rq->q->disk->disk_name,
				   req_op(rq) == REQ_OP_WRITE ? "write" : "read",
				   blk_rq_bytes(rq),
				   (unsigned long long)blk_rq_pos(rq), ret);
		cmd->sts = BLK_STS_IOERR;
	}
	kfree(cmd->bvec);
	cmd->bvec = NULL;
	qcow_cmd_epoch_exit(rq->q->queuedata, cmd);
	blk_mq_complete_request(rq);
}

/*
 * Fast path: a read that maps to one run of data clusters inside the file,
 * or a write to one run of allocated clusters that are not shared (COPIED),
 * becomes one asynchronous direct I/O, as loop does; the worker does not
 * wait for it.  @nowait: not when the L2 slice is not cached.  When it
 * declines, @ext is what the whole request maps to in the top layer, or
 * @ext->len is 0 (not mapped, or not in one extent).
 */
static bool qcow_rw_fast(struct qcow_device *dev, struct qcow_cmd *cmd,
			 struct iov_iter *iter, u64 pos, size_t len, bool write,
			 bool fua, bool nowait, struct qcow_extent *ext)
{
	struct qcow_layer *l = dev->top;
	struct qcow_image *img = l->img;

	/*
	 * The last sector may extend past the virtual size, and a cluster may
	 * extend past the end of the file: the slow path reads zeros there.
	 */
	if (pos + len > l->size ||
	    (nowait ? qcow_map_nowait(img, pos, len, ext) :
		      qcow_map(img, pos, len, ext)) || ext->len != len) {
		ext->len = 0;
		return false;
	}
	if (ext->type != QCOW2_SUBCLUSTER_NORMAL ||
	    (!write && ext->host + len > l->ops->size(l)))
		return false;
	if (write && (!ext->copied || qcow_image_failed(img) ||
		      qcow_meta_overlaps(img, ext->host, len)))
		return false;
	return !qcow_file_rw_async(l, &cmd->iocb, iter, ext->host,
				   fua ? IOCB_DSYNC : 0, qcow_aio_done);
}

/*
 * A read of the dispatcher that the fast path declined, @ext being what it
 * maps to in the top layer: zeros are filled in here, and a range the top
 * layer does not allocate is read from the backing chain asynchronously
 * when it is one run of data there (qcow_layer_read_async()), as a fast
 * path read is.  Return: 0 (done), -EINPROGRESS (qcow_aio_done() completes
 * it), or -EAGAIN (anything else: compressed data, several extents, a
 * slice not cached; nothing done).
 */
static int qcow_read_nowait(struct qcow_device *dev, struct qcow_cmd *cmd,
			    struct iov_iter *iter, u64 pos, size_t len,
			    const struct qcow_extent *ext)
{
	struct qcow_layer *l = dev->top;

	if (ext->len != len)
		return -EAGAIN;
	switch (ext->type) {
	case QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN:
	case QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC:
		if (l->backing)
			return qcow_layer_read_async(l->backing, pos, iter,
						     &cmd->iocb, qcow_aio_done,
						     true) ? -EAGAIN : -EINPROGRESS;
		fallthrough;
	case QCOW2_SUBCLUSTER_ZERO_PLAIN:
	case QCOW2_SUBCLUSTER_ZERO_ALLOC:
		return iov_iter_zero(len, iter) == len ? 0 : -EIO;
	default:
		return -EAGAIN;
	}
}

/*
 * Read or write @rq.  @nowait (the dispatcher): only what does not wait for
 * I/O is done, else -EAGAIN with nothing done.  Return: -EINPROGRESS when
 * the request's completion is left to an asynchronous I/O, else its result.
 */
static int qcow_cmd_rw(struct qcow_device *dev, struct qcow_cmd *cmd,
		       struct request *rq, u64 pos, size_t len, bool write,
		       bool nowait)
{
	struct req_iterator rq_iter;
	struct bio *bio = rq->bio;
	unsigned int nr_bvec = 0, i = 0;
	struct qcow_extent ext;
	struct iov_iter iter;
	struct bio_vec tmp;
	bool fua = rq->cmd_flags & REQ_FUA;
	int dir = write ? WRITE : READ;
	int err;

	rq_for_each_bvec(tmp, rq, rq_iter)
		nr_bvec++;

	if (rq->bio != rq->biotail) {
		/* Several bios: gather their segments into one array. */
		cmd->bvec = kmalloc_array(nr_bvec, sizeof(*cmd->bvec), GFP_NOIO);
		if (!cmd->bvec)
			return -ENOMEM;
		rq_for_each_bvec(tmp, rq, rq_iter)
			cmd->bvec[i++] = tmp;
		iov_iter_bvec(&iter, dir, cmd->bvec, nr_bvec, len);
	} else {
		iov_iter_bvec(&iter, dir,
			      __bvec_iter_bvec(bio->bi_io_vec, bio->bi_iter),
			      nr_bvec, len);
		iter.iov_offset = bio->bi_iter.bi_bvec_done;
	}

	if (qcow_rw_fast(dev, cmd, &iter, pos, len, write, fua, nowait, &ext))
		return -EINPROGRESS;	/* qcow_aio_done() completes it */

	err = -EAGAIN;
	if (!write && nowait) {
		err = qcow_read_nowait(dev, cmd, &iter, pos, len, &ext);
		if (err == -EINPROGRESS)
			return err;
	} else if (write && !fua) {
		cmd->aw.nowait = nowait;
		err = qcow_layer_write_async(dev->top, pos, &iter, len, &cmd->aw);
	}
	if (err == -EINPROGRESS)
		return err;		/* qcow_awrite_done() completes it */
	if (err == -EAGAIN && !nowait)
		err = write ? qcow_layer_write(dev->top, pos, &iter, len, fua) :
			      qcow_layer_read(dev->top, pos, &iter, len);
	kfree(cmd->bvec);
	cmd->bvec = NULL;
	return err;
}

/*
 * A request that may wait: flushes, discards, write-zeroes, and the reads
 * and writes the dispatcher could not start without waiting.
 */
static void qcow_cmd_work(struct work_struct *work)
{
	struct qcow_cmd *cmd = container_of(work, struct qcow_cmd, work);
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct qcow_device *dev = rq->q->queuedata;
	struct qcow_image *img = dev->top->img;
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	size_t len = blk_rq_bytes(rq);
	unsigned int noio = memalloc_noio_save();
	int err;

	cmd->sts = BLK_STS_OK;
	cmd->bvec = NULL;
	cmd->epoch = -1;
	if (req_op(rq) == REQ_OP_FLUSH) {
		/* Not inside an epoch: it waits for the old one to drain. */
		err = qcow_image_flush(img, true);
		goto out;
	}
	if (img->writable)
		cmd->epoch = qcow_epoch_enter(img);

	switch (req_op(rq)) {
	case REQ_OP_READ:
		err = qcow_cmd_rw(dev, cmd, rq, pos, len, false, false);
		break;
	case REQ_OP_WRITE:
		err = qcow_cmd_rw(dev, cmd, rq, pos, len, true, false);
		break;
	case REQ_OP_DISCARD:
		err = qcow_layer_zero(dev->top, pos, len, true, true);
		break;
	case REQ_OP_WRITE_ZEROES:
		err = qcow_layer_zero(dev->top, pos, len, false,
				      !(rq->cmd_flags & REQ_NOUNMAP));
		break;
	default:
		err = -EOPNOTSUPP;
		break;
	}
	if (err == -EINPROGRESS)
		goto out_noio;	/* the asynchronous I/O completes it */
	if (!err && (rq->cmd_flags & REQ_FUA) && req_op(rq) != REQ_OP_WRITE)
		err = qcow_image_flush(img, false);
out:
	qcow_cmd_end(dev, cmd, err);
out_noio:
	memalloc_noio_restore(noio);
}

/*
 * Dispatch one read or write without waiting for I/O: started, failed
 * planning, or handed to its own work item with nothing done.
 */
static void qcow_cmd_dispatch(struct qcow_device *dev, struct qcow_cmd *cmd)
{
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct qcow_image *img = dev->top->img;
	int err;

	cmd->sts = BLK_STS_OK;
	cmd->bvec = NULL;
	cmd->epoch = img->writable ? qcow_epoch_enter(img) : -1;
	err = qcow_cmd_rw(dev, cmd, rq, (u64)blk_rq_pos(rq) << SECTOR_SHIFT,
			  blk_rq_bytes(rq), req_op(rq) == REQ_OP_WRITE, true);
	if (err == -EINPROGRESS)
		return;		/* the asynchronous I/O completes it */
	if (err == -EAGAIN) {
		qcow_cmd_epoch_exit(dev, cmd);
		queue_work(dev->wq, &cmd->work);
		return;
	}
	qcow_cmd_end(dev, cmd, err);
}

/*
 * The dispatcher of a hardware queue: everything queued, in arrival order,
 * under one plug, so the image file's I/O of a batch reaches its disk
 * together.  A request may complete as soon as it is dispatched: the next
 * one is read first.  As in loop's worker, no allocation here (the file
 * system's included) may recurse into I/O, which could come back to this
 * device.
 */
static void qcow_hwq_work(struct work_struct *work)
{
	struct qcow_hwq *hq = container_of(work, struct qcow_hwq, work);
	unsigned int noio = memalloc_noio_save();
	struct qcow_cmd *cmd, *next;
	struct llist_node *list;
	struct blk_plug plug;

	while ((list = llist_del_all(&hq->cmds))) {
		blk_start_plug(&plug);
		llist_for_each_entry_safe(cmd, next, llist_reverse_order(list),
					  node)
			qcow_cmd_dispatch(hq->dev, cmd);
		blk_finish_plug(&plug);
		cond_resched();
	}
	memalloc_noio_restore(noio);
}

static void qcow_complete_rq(struct request *rq)
{
	struct qcow_cmd *cmd = blk_mq_rq_to_pdu(rq);

	blk_mq_end_request(rq, cmd->sts);
}

/* Queue @cmd for the dispatcher of @hq; wake it if the list was empty. */
static void qcow_hwq_add(struct qcow_hwq *hq, struct qcow_cmd *cmd)
{
	/*
	 * A dispatcher that took the list before this add is either still
	 * running, and queue_work() queues it again, or pending, and runs
	 * after it.
	 */
	if (llist_add(&cmd->node, &hq->cmds))
		queue_work(hq->dev->wq, &hq->work);
}

static int qcow_init_hctx(struct blk_mq_hw_ctx *hctx, void *data,
			  unsigned int idx)
{
	struct qcow_device *dev = data;

	hctx->driver_data = &dev->hwq[idx];
	return 0;
}

static blk_status_t qcow_queue_rq(struct blk_mq_hw_ctx *hctx,
				  const struct blk_mq_queue_data *bd)
{
	struct request *rq = bd->rq;
	struct qcow_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct qcow_device *dev = rq->q->queuedata;

	blk_mq_start_request(rq);
	switch (req_op(rq)) {
	case REQ_OP_READ:
		qcow_hwq_add(hctx->driver_data, cmd);
		return BLK_STS_OK;
	case REQ_OP_FLUSH:
		if (dev->read_only) {
			/* Nothing is ever dirty. */
			blk_mq_end_request(rq, BLK_STS_OK);
			return BLK_STS_OK;
		}
		queue_work(dev->wq, &cmd->work);
		return BLK_STS_OK;
	case REQ_OP_WRITE:
	case REQ_OP_DISCARD:
	case REQ_OP_WRITE_ZEROES:
		/* The block layer lets writes to read-only disks through. */
		if (dev->read_only)
			return BLK_STS_IOERR;
		if (req_op(rq) == REQ_OP_WRITE)
			qcow_hwq_add(hctx->driver_data, cmd);
		else
			queue_work(dev->wq, &cmd->work);
		return BLK_STS_OK;
	default:
		return BLK_STS_NOTSUPP;
	}
}

static int qcow_init_request(struct blk_mq_tag_set *set, struct request *rq,
			     unsigned int hctx_idx, unsigned int numa_node)
{
	struct qcow_cmd *cmd = blk_mq_rq_to_pdu(rq);

	INIT_WORK(&cmd->work, qcow_cmd_work);
	cmd->aw.done = qcow_awrite_done;
	return 0;
}

static const struct blk_mq_ops qcow_mq_ops = {
	.queue_rq	= qcow_queue_rq,
	.complete	= qcow_complete_rq,
	.init_hctx	= qcow_init_hctx,
	.init_request	= qcow_init_request,
};

/* ------------------------------------------------------------------------
 * block device operations
 */

static int qcow_open(struct block_device *bdev, fmode_t mode)
{
	struct qcow_device *dev = bdev->bd_disk->private_data;
	int err = 0;

	mutex_lock(&dev->lock);
	if (dev->state != QCOW_STATE_BOUND)
		err = -ENXIO;
	mutex_unlock(&dev->lock);
	return err;
}

static void qcow_release(struct gendisk *disk, fmode_t mode)
{
	struct qcow_device *dev = disk->private_data;

	mutex_lock(&dev->lock);
	if (dev->autoclear && dev->state == QCOW_STATE_BOUND &&
	    !disk_openers(disk)) {
		dev->state = QCOW_STATE_RUNDOWN;
		/* del_gendisk() cannot run under the open mutex held here. */
		queue_work(qcow_remove_wq, &dev->remove_work);
	}
	mutex_unlock(&dev->lock);
}

static void qcow_free_disk(struct gendisk *disk)
{
	struct qcow_device *dev = disk->private_data;

	if (!dev)
		return;		/* attach failed: its unwind frees dev */
	mutex_destroy(&dev->lock);
	kfree(dev->hwq);
	kfree(dev);
}

/* QCOW_RESIZE: grow the disk with its queue frozen. */
static int qcow_resize_ioctl(struct qcow_device *dev, struct block_device *bdev,
			     fmode_t mode, void __user *arg)
{
	struct request_queue *q = dev->disk->queue;
	struct qcow_resize r;
	struct qcow_image *img;
	u64 old;
	int err;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (bdev_is_partition(bdev))
		return -ENOTTY;
	/* It changes the disk: a descriptor opened for writing, as BLKDISCARD. */
	if (!(mode & FMODE_WRITE))
		return -EBADF;
	if (copy_from_user(&r, arg, sizeof(r)))
		return -EFAULT;
	if (r.flags || memchr_inv(r.reserved, 0, sizeof(r.reserved)))
		return -EINVAL;
	if (dev->read_only)
		return -EROFS;

	mutex_lock(&dev->lock);
	if (dev->state != QCOW_STATE_BOUND) {
		err = -ENXIO;
		goto out_unlock;
	}
	img = dev->top->img;
	old = img->hdr->size;
	blk_mq_freeze_queue(q);
	err = qcow_image_flush(img, true);
	if (!err) {
		mutex_lock(&img->meta_lock);
		err = qcow_image_failed(img) ? -EIO : qcow_image_resize(img, r.size);
		mutex_unlock(&img->meta_lock);
	}
	if (!err && img->hdr->size != old) {
		/* Releases the old L1 table; a failure only delays that. */
		qcow_image_flush(img, true);
		set_capacity_and_notify(dev->disk,
					DIV_ROUND_UP_ULL(img->hdr->size, SECTOR_SIZE));
		pr_info("%s: resized from %llu to %llu bytes\n",
			dev->disk->disk_name, old, img->hdr->size);
	}
	blk_mq_unfreeze_queue(q);
out_unlock:
	mutex_unlock(&dev->lock);
	return err;
}

static int qcow_ioctl(struct block_device *bdev, fmode_t mode,
		      unsigned int cmd, unsigned long arg)
{
	struct qcow_device *dev = bdev->bd_disk->private_data;

	if (cmd == QCOW_RESIZE)
		return qcow_resize_ioctl(dev, bdev, mode, (void __user *)arg);
	return qcow_snapshot_ioctl(dev, bdev, mode, cmd, (void __user *)arg);
}

static const struct block_device_operations qcow_fops = {
	.owner		= THIS_MODULE,
	.open		= qcow_open,
	.release	= qcow_release,
	.ioctl		= qcow_ioctl,
	.compat_ioctl	= blkdev_compat_ptr_ioctl,
	.free_disk	= qcow_free_disk,
};

/* ------------------------------------------------------------------------
 * sysfs: /sys/block/qcowN/qcow/
 */

static struct qcow_device *qcow_sysfs_dev(struct device *d)
{
	return dev_to_disk(d)->private_data;
}

static ssize_t image_show(struct device *d, struct device_attribute *attr,
			  char *buf)
{
	struct qcow_device *dev = qcow_sysfs_dev(d);
	char *tmp, *p;
	ssize_t n;

	tmp = kmalloc(PATH_MAX, GFP_KERNEL);
	if (!tmp)
		return -ENOMEM;
	p = file_path(dev->top->file, tmp, PATH_MAX);
	n = IS_ERR(p) ? PTR_ERR(p) : sysfs_emit(buf, "%s\n", p);
	kfree(tmp);
	return n;
}
static DEVICE_ATTR_RO(image);

static ssize_t backing_show(struct device *d, struct device_attribute *attr,
			    char *buf)
{
	struct qcow_device *dev = qcow_sysfs_dev(d);
	struct qcow_layer *l;
	ssize_t n = 0;
	char *tmp, *p;

	tmp = kmalloc(PATH_MAX, GFP_KERNEL);
	if (!tmp)
		return -ENOMEM;
	for (l = dev->top->backing; l; l = l->backing) {
		p = file_path(l->file, tmp, PATH_MAX);
		if (IS_ERR(p))
			p = "?";
		n += sysfs_emit_at(buf, n, "%s %s\n",
				   l->format == QCOW_FMT_RAW ? "raw" : "qcow2", p);
	}
	kfree(tmp);
	return n;
}
static DEVICE_ATTR_RO(backing);

#define QCOW_HDR_ATTR(name, expr)					\
static ssize_t name##_show(struct device *d,				\
			   struct device_attribute *attr, char *buf)	\
{									\
	struct qcow_image *img = qcow_sysfs_dev(d)->top->img;		\
									\
	return sysfs_emit(buf, "%llu\n", (unsigned long long)(expr));	\
}									\
static DEVICE_ATTR_RO(name)

QCOW_HDR_ATTR(virtual_size, img->hdr->size);
QCOW_HDR_ATTR(cluster_size, img->hdr->cluster_size);
QCOW_HDR_ATTR(version, img->hdr->version);
QCOW_HDR_ATTR(cache_size, qcow_cache_bytes(img->cache));
QCOW_HDR_ATTR(corrupt, atomic_read(&img->corrupt) != 0);
QCOW_HDR_ATTR(stopped, atomic_read(&img->stopped) != 0);
QCOW_HDR_ATTR(dirty_slices, img->writable ?
	      qcow_cache_nr_dirty(img->cache) + qcow_cache_nr_dirty(img->rcache) : 0);

static ssize_t read_only_show(struct device *d, struct device_attribute *attr,
			      char *buf)
{
	return sysfs_emit(buf, "%d\n", qcow_sysfs_dev(d)->read_only);
}
static DEVICE_ATTR_RO(read_only);

static ssize_t cache_hits_show(struct device *d, struct device_attribute *attr,
			       char *buf)
{
	u64 hits, misses;

	qcow_cache_stats(qcow_sysfs_dev(d)->top->img->cache, &hits, &misses);
	return sysfs_emit(buf, "%llu\n", hits);
}
static DEVICE_ATTR_RO(cache_hits);

static ssize_t cache_misses_show(struct device *d,
				 struct device_attribute *attr, char *buf)
{
	u64 hits, misses;

	qcow_cache_stats(qcow_sysfs_dev(d)->top->img->cache, &hits, &misses);
	return sysfs_emit(buf, "%llu\n", misses);
}
static DEVICE_ATTR_RO(cache_misses);

/*
 * Opens of the disk that the driver's ->open() let through and ->release()
 * has not seen back: the block layer calls them once per open of the
 * whole disk and once per partition that is open, which is exactly
 * disk_openers().  Detach is refused (EBUSY) while this is not 0.
 */
static ssize_t open_count_show(struct device *d, struct device_attribute *attr,
			       char *buf)
{
	return sysfs_emit(buf, "%u\n", disk_openers(dev_to_disk(d)));
}
static DEVICE_ATTR_RO(open_count);

static struct attribute *qcow_attrs[] = {
	&dev_attr_image.attr,
	&dev_attr_backing.attr,
	&dev_attr_virtual_size.attr,
	&dev_attr_cluster_size.attr,
	&dev_attr_version.attr,
	&dev_attr_read_only.attr,
	&dev_attr_cache_size.attr,
	&dev_attr_cache_hits.attr,
	&dev_attr_cache_misses.attr,
	&dev_attr_corrupt.attr,
	&dev_attr_stopped.attr,
	&dev_attr_dirty_slices.attr,
	&dev_attr_open_count.attr,
	NULL,
};

static const struct attribute_group qcow_attr_group = {
	.name = "qcow",
	.attrs = qcow_attrs,
};

static const struct attribute_group *qcow_attr_groups[] = {
	&qcow_attr_group,
	NULL,
};

/* ------------------------------------------------------------------------
 * attach / detach
 */

static void qcow_layers_put(struct qcow_device *dev)
{
	unsigned int i;

	for (i = 0; i < dev->nr_layers; i++) {
		struct qcow_layer *l = &dev->layers[i];

		qcow_image_close(l->img);
		l->img = NULL;
		if (l->file)
			fput(l->file);
		l->file = NULL;
	}
}

static const char *qcow_fmt_name(u32 format)
{
	return format == QCOW_FMT_RAW ? "raw" : "qcow2";
}

/* Open and cross-check every layer of the chain, top first. */
static int qcow_layers_get(struct qcow_device *dev, struct qcow_attach *a,
			   const struct qcow_layer_desc *descs)
{
	unsigned int i, j;
	int err;

	for (i = 0; i < dev->nr_layers; i++) {
		struct qcow_layer *l = &dev->layers[i];
		u32 fd = i ? descs[i - 1].fd : a->image_fd;
		struct inode *inode;

		l->depth = i;
		l->ops = &qcow_file_layer_ops;
		l->format = i ? descs[i - 1].format : QCOW_FMT_QCOW2;
		l->file = fget(fd);
		if (!l->file)
			return -EBADF;
		if (!(l->file->f_mode & FMODE_READ))
			return -EBADF;
		l->wb_err = errseq_sample(&l->file->f_mapping->wb_err);
		if (!i && !(a->flags & QCOW_ATTACH_READ_ONLY) &&
		    !(l->file->f_mode & FMODE_WRITE)) {
			pr_err("%pD: read-write attach of a file opened read-only\n",
			       l->file);
			return -EBADF;
		}
		inode = l->file->f_mapping->host;
		if (!S_ISREG(inode->i_mode) && !S_ISBLK(inode->i_mode)) {
			pr_err("layer %u: not a regular file or block device\n", i);
			return -EINVAL;
		}
		for (j = 0; j < i; j++) {
			if (dev->layers[j].file->f_mapping->host == inode) {
				pr_err("%pD: backing chain loops (layer %u is layer %u)\n",
				       l->file, i, j);
				return -ELOOP;
			}
		}
		if (i)
			dev->layers[i - 1].backing = l;
		l->dio = qcow_file_can_dio(l->file);

		if (l->format == QCOW_FMT_RAW) {
			l->size = i_size_read(inode);
			if (i + 1 < dev->nr_layers) {
				pr_err("%pD: a raw layer cannot have a backing layer\n",
				       l->file);
				return -EINVAL;
			}
			continue;
		}
		err = qcow_image_open(l, i ? 0 : a->cache_size);
		if (err)
			return err;
	}

	if (!(a->flags & QCOW_ATTACH_READ_ONLY)) {
		err = qcow_image_open_rw(dev->top->img);
		if (err)
			return err;
	}

	/* Each qcow2 layer must get exactly the backing layer it names. */
	for (i = 0; i < dev->nr_layers; i++) {
		struct qcow_layer *l = &dev->layers[i];
		const struct qcow2_extensions *ext;

		if (!l->img)
			continue;
		ext = &l->img->qi->ext;
		if (ext->has_backing_file && !l->backing) {
			pr_err("%pD: image has backing file '%s' but no backing layer was given\n",
			       l->file, ext->backing_file);
			return -EINVAL;
		}
		if (!ext->has_backing_file && l->backing) {
			pr_err("%pD: image has no backing file but a backing layer was given\n",
			       l->file);
			return -EINVAL;
		}
		if (l->backing && ext->has_backing_format &&
		    strcmp(ext->backing_format, qcow_fmt_name(l->backing->format))) {
			pr_err("%pD: backing format is '%s' but a %s layer was given\n",
			       l->file, ext->backing_format,
			       qcow_fmt_name(l->backing->format));
			return -EINVAL;
		}
	}
	return 0;
}

static void qcow_set_limits(struct qcow_device *dev)
{
	struct request_queue *q = dev->disk->queue;
	const struct qcow2_header *h = dev->top->img->hdr;

	blk_queue_logical_block_size(q, SECTOR_SIZE);
	blk_queue_physical_block_size(q, min_t(u64, h->cluster_size, PAGE_SIZE));
	blk_queue_io_min(q, min_t(u64, h->cluster_size, PAGE_SIZE));
	blk_queue_io_opt(q, h->cluster_size);
	blk_queue_max_hw_sectors(q, QCOW_MAX_SECTORS);
	if (!dev->read_only) {
		u32 unit = 1U << h->subcluster_bits;

		/* Metadata is cached: flushes and FUA must reach us. */
		blk_queue_write_cache(q, true, true);
		q->limits.discard_granularity = max_t(u32, unit, SECTOR_SIZE);
		blk_queue_max_discard_sectors(q, UINT_MAX >> SECTOR_SHIFT);
		blk_queue_max_write_zeroes_sectors(q, UINT_MAX >> SECTOR_SHIFT);
	}
	blk_queue_flag_set(QUEUE_FLAG_NONROT, q);
	blk_queue_flag_clear(QUEUE_FLAG_ADD_RANDOM, q);
}

/*
 * The index of a new device, reserved in qcow_idr (with a NULL pointer):
 * the lowest free one, or with QCOW_ATTACH_INDEX the one asked for.
 * -ENOSPC when max_devices are in use; -EBUSY when the one asked for
 * exists (also while it is being detached); -EINVAL when it is not below
 * max_devices.
 */
static int qcow_index_reserve(const struct qcow_attach *a)
{
	int idx;

	if ((a->flags & QCOW_ATTACH_INDEX) && a->index >= qcow_max_devices)
		return -EINVAL;
	mutex_lock(&qcow_ctl_mutex);
	if (a->flags & QCOW_ATTACH_INDEX) {
		idx = idr_alloc(&qcow_idr, NULL, a->index, a->index + 1,
				GFP_KERNEL);
		if (idx == -ENOSPC)
			idx = -EBUSY;
	} else {
		idx = idr_alloc(&qcow_idr, NULL, 0, qcow_max_devices, GFP_KERNEL);
	}
	mutex_unlock(&qcow_ctl_mutex);
	return idx;
}

/* Drain and free dev->aw_wq (if any); the image forgets it. */
static void qcow_aw_wq_destroy(struct qcow_device *dev)
{
	if (!dev->aw_wq)
		return;
	destroy_workqueue(dev->aw_wq);
	dev->aw_wq = NULL;
	dev->top->img->aw_wq = NULL;
}

/**
 * qcow_dev_attach() - create /dev/qcowN for an image and its backing chain
 * @a: attach arguments, already checked for flags and reserved fields;
 *     @a->index is the index asked for with QCOW_ATTACH_INDEX, and is set
 *     on success
 * @descs: @a->nr_layers backing layer descriptors
 *
 * Return: 0, or a negative errno (-EBUSY, -EINVAL: the index asked for is
 * taken or out of range; -ENOSPC: max_devices in use; others from the
 * image); on failure nothing is left behind.
 */
int qcow_dev_attach(struct qcow_attach *a, const struct qcow_layer_desc *descs)
{
	unsigned int nr = a->nr_layers + 1;
	struct qcow_device *dev;
	struct gendisk *disk;
	unsigned int i;
	int err, idx;

	dev = kzalloc(struct_size(dev, layers, nr), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	mutex_init(&dev->lock);
	INIT_WORK(&dev->remove_work, qcow_dev_remove_work);
	dev->nr_layers = nr;
	dev->top = &dev->layers[0];
	dev->read_only = a->flags & QCOW_ATTACH_READ_ONLY;

	/*
	 * Reserve the index first: a requested one that is taken fails
	 * before the image is read.  Detach cannot find dev until it is
	 * complete (the idr holds NULL until then).
	 */
	idx = qcow_index_reserve(a);
	if (idx < 0) {
		err = idx;
		goto err_free;
	}
	dev->index = idx;

	err = qcow_layers_get(dev, a, descs);
	if (err)
		goto err_layers;

	dev->hwq = kcalloc(nr_cpu_ids, sizeof(*dev->hwq), GFP_KERNEL);
	if (!dev->hwq) {
		err = -ENOMEM;
		goto err_layers;
	}
	for (i = 0; i < nr_cpu_ids; i++) {
		init_llist_head(&dev->hwq[i].cmds);
		INIT_WORK(&dev->hwq[i].work, qcow_hwq_work);
		dev->hwq[i].dev = dev;
	}
	/* The dispatchers and the requests' work items run here. */
	dev->wq = alloc_workqueue("qcow%d", WQ_UNBOUND | WQ_MEM_RECLAIM, 0, idx);
	if (!dev->wq) {
		err = -ENOMEM;
		goto err_layers;
	}
	/*
	 * Allocating writes complete on a queue of their own: workers of
	 * dev->wq may be waiting for them (qcow_layer_write_async()).
	 */
	if (dev->top->img && dev->top->img->writable) {
		dev->aw_wq = alloc_workqueue("qcow%d_aw",
					     WQ_UNBOUND | WQ_MEM_RECLAIM, 0, idx);
		if (!dev->aw_wq) {
			err = -ENOMEM;
			goto err_wq;
		}
		dev->top->img->aw_wq = dev->aw_wq;
	}

	dev->tag_set.ops = &qcow_mq_ops;
	dev->tag_set.nr_hw_queues = nr_cpu_ids;
	dev->tag_set.queue_depth = QCOW_QUEUE_DEPTH;
	dev->tag_set.numa_node = NUMA_NO_NODE;
	dev->tag_set.cmd_size = sizeof(struct qcow_cmd);
	dev->tag_set.flags = BLK_MQ_F_SHOULD_MERGE;
	dev->tag_set.driver_data = dev;
	err = blk_mq_alloc_tag_set(&dev->tag_set);
	if (err)
		goto err_aw_wq;

	disk = blk_mq_alloc_disk(&dev->tag_set, dev);
	if (IS_ERR(disk)) {
		err = PTR_ERR(disk);
		goto err_tags;
	}
	dev->disk = disk;
	qcow_set_limits(dev);
	disk->major = qcow_major;
	disk->first_minor = idx << QCOW_PART_SHIFT;
	disk->minors = 1 << QCOW_PART_SHIFT;
	disk->fops = &qcow_fops;
	disk->private_data = dev;
	snprintf(disk->disk_name, DISK_NAME_LEN, "qcow%d", idx);
	if (!(a->flags & QCOW_ATTACH_PARTSCAN))
		disk->flags |= GENHD_FL_NO_PART;
	set_capacity(disk, DIV_ROUND_UP_ULL(dev->top->size, SECTOR_SIZE));
	set_disk_ro(disk, dev->read_only);
	dev->state = QCOW_STATE_BOUND;

	/* Devices pin the module: rmmod is refused while one exists. */
	__module_get(THIS_MODULE);
	err = device_add_disk(NULL, disk, qcow_attr_groups);
	if (err)
		goto err_disk;

	mutex_lock(&qcow_ctl_mutex);
	idr_replace(&qcow_idr, dev, idx);
	mutex_unlock(&qcow_ctl_mutex);
	a->index = idx;
	pr_info("qcow%d: attached %pD4 (%llu bytes, %u layer%s, %s)\n",
		idx, dev->top->file, dev->top->size, nr, nr > 1 ? "s" : "",
		dev->read_only ? "read-only" : "read-write");
	return 0;

err_disk:
	module_put(THIS_MODULE);
	/* put_disk() frees dev through ->free_disk: undo the rest first. */
	disk->private_data = NULL;
	put_disk(disk);
	dev->disk = NULL;
err_tags:
	blk_mq_free_tag_set(&dev->tag_set);
err_aw_wq:
	qcow_aw_wq_destroy(dev);
err_wq:
	destroy_workqueue(dev->wq);
err_layers:
	qcow_layers_put(dev);
	mutex_lock(&qcow_ctl_mutex);
	idr_remove(&qcow_idr, idx);
	mutex_unlock(&qcow_ctl_mutex);
err_free:
	mutex_destroy(&dev->lock);
	kfree(dev->hwq);
	kfree(dev);
	return err;
}

/* Tear down a device in RUNDOWN state; dev is freed on the last disk put. */
static void qcow_dev_remove(struct qcow_device *dev)
{
	struct gendisk *disk = dev->disk;
	int idx = dev->index;

	del_gendisk(disk);		/* drains in-flight requests */
	destroy_workqueue(dev->wq);
	qcow_aw_wq_destroy(dev);	/* before the image is closed */
	blk_mq_free_tag_set(&dev->tag_set);
	qcow_layers_put(dev);
	mutex_lock(&qcow_ctl_mutex);
	idr_remove(&qcow_idr, idx);
	mutex_unlock(&qcow_ctl_mutex);
	pr_info("qcow%d: detached\n", idx);
	put_disk(disk);
	module_put(THIS_MODULE);
}

static void qcow_dev_remove_work(struct work_struct *work)
{
	qcow_dev_remove(container_of(work, struct qcow_device, remove_work));
}

/**
 * qcow_dev_detach() - remove /dev/qcowN
 * @d: detach arguments, already checked for flags and reserved fields
 *
 * Return: 0; -ENXIO when there is no such device or it is already going
 * away; -EBUSY when it is open (unless lazy: then it goes away on last
 * close).
 */
int qcow_dev_detach(const struct qcow_detach *d)
{
	struct qcow_device *dev;
	bool remove = false;
	int err = 0;

	mutex_lock(&qcow_ctl_mutex);
	dev = idr_find(&qcow_idr, d->index);
	if (!dev) {
		mutex_unlock(&qcow_ctl_mutex);
		return -ENXIO;
	}
	mutex_lock(&dev->lock);
	if (dev->state != QCOW_STATE_BOUND) {
		err = -ENXIO;	/* already going away */
	} else if (disk_openers(dev->disk)) {
		if (d->flags & QCOW_DETACH_LAZY)
			dev->autoclear = true;
		else
			err = -EBUSY;
	} else {
		dev->state = QCOW_STATE_RUNDOWN;
		remove = true;
	}
	mutex_unlock(&dev->lock);
	mutex_unlock(&qcow_ctl_mutex);

	if (remove)
		qcow_dev_remove(dev);
	return err;
}

/**
 * qcow_dev_init() - register the qcow block major
 *
 * Return: 0 or a negative errno.
 */
int qcow_dev_init(void)
{
	qcow_remove_wq = alloc_workqueue("qcow_remove", WQ_UNBOUND, 0);
	if (!qcow_remove_wq)
		return -ENOMEM;
	qcow_major = register_blkdev(0, "qcow");
	if (qcow_major < 0) {
		destroy_workqueue(qcow_remove_wq);
		return qcow_major;
	}
	return 0;
}

/**
 * qcow_dev_exit() - unregister the block major; no device may exist
 */
void qcow_dev_exit(void)
{
	unregister_blkdev(qcow_major, "qcow");
	/* A lazy detach's work may still be returning from its module_put(). */
	destroy_workqueue(qcow_remove_wq);
	idr_destroy(&qcow_idr);
}
