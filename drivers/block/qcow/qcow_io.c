// SPDX-License-Identifier: GPL-2.0
/*
 * qcow: image file I/O.
 *
 * Reads go through a kiocb on the layer's struct file, the way loop does:
 * with IOCB_DIRECT when the file supports direct I/O and the request is
 * aligned (the page cache is bypassed and the data path is one copy-free
 * I/O), buffered otherwise.  Reads that end past EOF are completed with
 * zeros: the format allows the last cluster of a file to be short.
 *
 * Writes use the same kiocb machinery (direct when aligned, buffered
 * otherwise; IOCB_DSYNC for FUA); flushes are fdatasync; freed clusters
 * are punched out of the file so it shrinks.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/errseq.h>
#include <linux/falloc.h>
#include <linux/ioprio.h>
#include <linux/uio.h>

#include "qcow_main.h"

/**
 * qcow_file_can_dio() - whether direct I/O may be used on @file
 * @file: an image or backing file
 *
 * Return: true when the file's address space implements direct I/O and
 * its block device accepts 512-byte aligned I/O (our logical block size).
 */
bool qcow_file_can_dio(struct file *file)
{
	struct inode *inode = file_inode(file);
	struct super_block *sb = inode->i_sb;

	if (!S_ISREG(inode->i_mode) || !file->f_mapping->a_ops->direct_IO)
		return false;
	if (sb->s_bdev && bdev_logical_block_size(sb->s_bdev) > SECTOR_SIZE)
		return false;
	return true;
}

static bool qcow_dio_aligned(struct iov_iter *iter, loff_t pos)
{
	/* Direct I/O pins pages: only bvec iterators (block requests) qualify. */
	return iov_iter_is_bvec(iter) && !(pos & (SECTOR_SIZE - 1)) &&
		!(iov_iter_alignment(iter) & (SECTOR_SIZE - 1));
}

/* Read @len bytes at @pos of the layer's struct file; zeros past EOF. */
static int qcow_kiocb_read(struct qcow_layer *l, struct iov_iter *iter,
			   size_t len, loff_t pos)
{
	struct iov_iter sub = *iter;
	struct kiocb kiocb;
	size_t done = 0;
	ssize_t ret;

	iov_iter_truncate(&sub, len);
	while (done < len) {
		init_sync_kiocb(&kiocb, l->file);
		kiocb.ki_pos = pos + done;
		if (l->dio && qcow_dio_aligned(&sub, kiocb.ki_pos) &&
		    !((len - done) & (SECTOR_SIZE - 1)))
			kiocb.ki_flags |= IOCB_DIRECT;
		ret = call_read_iter(l->file, &kiocb, &sub);
		if (ret < 0) {
			pr_err_ratelimited("read of %zu bytes at %lld failed: %zd\n",
					   len - done, pos + done, ret);
			return -EIO;
		}
		if (!ret) {
			/* EOF: the rest reads as zeros. */
			if (iov_iter_zero(len - done, &sub) != len - done)
				return -EIO;
			break;
		}
		done += ret;
	}
	iov_iter_advance(iter, len);
	return 0;
}

/* Write @len bytes at @pos; a short write is retried, an error is -EIO. */
static int qcow_kiocb_write(struct qcow_layer *l, struct iov_iter *iter,
			    size_t len, loff_t pos, bool fua)
{
	struct iov_iter sub = *iter;
	struct kiocb kiocb;
	size_t done = 0;
	ssize_t ret;

	iov_iter_truncate(&sub, len);
	while (done < len) {
		init_sync_kiocb(&kiocb, l->file);
		kiocb.ki_pos = pos + done;
		if (l->dio && qcow_dio_aligned(&sub, kiocb.ki_pos) &&
		    !((len - done) & (SECTOR_SIZE - 1)))
			kiocb.ki_flags |= IOCB_DIRECT;
		if (fua)
			kiocb.ki_flags |= IOCB_DSYNC;
		file_start_write(l->file);
		ret = call_write_iter(l->file, &kiocb, &sub);
		file_end_write(l->file);
		if (ret <= 0) {
			pr_err_ratelimited("%pD: write of %zu bytes at %lld failed: %zd\n",
					   l->file, len - done, pos + done, ret);
			return ret == -ENOSPC ? -ENOSPC : -EIO;
		}
		done += ret;
	}
	iov_iter_advance(iter, len);
	return 0;
}

static u64 qcow_kiocb_size(struct qcow_layer *l)
{
	return i_size_read(l->file->f_mapping->host);
}

/*
 * The file system reports a failed write-back to the first fsync of each
 * struct file after it, and that may be a FUA write's (IOCB_DSYNC), which
 * only fails its own request.  The layer's own cursor makes the flush
 * report every write-back error since the previous flush, whoever saw it
 * first.  (Two flushes racing may both report one error: harmless.)
 */
static int qcow_kiocb_flush(struct qcow_layer *l)
{
	int ret = vfs_fsync(l->file, 1);
	int wb = errseq_check_and_advance(&l->file->f_mapping->wb_err, &l->wb_err);

	ret = ret ?: wb;
	if (ret)
		pr_err_ratelimited("%pD: flush failed: %d\n", l->file, ret);
	return ret ? -EIO : 0;
}

static int qcow_kiocb_punch(struct qcow_layer *l, loff_t pos, u64 len)
{
	int ret;

	ret = vfs_fallocate(l->file, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			    pos, len);
	/* Punching is an optimization: file systems without it keep the bytes. */
	return ret == -EOPNOTSUPP ? 0 : ret;
}

static int qcow_kiocb_truncate(struct qcow_layer *l, u64 size)
{
	return vfs_truncate(&l->file->f_path, size);
}

/* Start a direct read or write: the iterator's direction says which. */
static int qcow_kiocb_rw_async(struct qcow_layer *l, struct kiocb *iocb,
			       struct iov_iter *iter, loff_t pos,
			       void (*done)(struct kiocb *iocb, long ret))
{
	return qcow_file_rw_async(l, iocb, iter, pos, 0, done);
}

const struct qcow_layer_ops qcow_file_layer_ops = {
	.read_iter	= qcow_kiocb_read,
	.read_async	= qcow_kiocb_rw_async,
	.write_iter	= qcow_kiocb_write,
	.write_async	= qcow_kiocb_rw_async,
	.size		= qcow_kiocb_size,
	.flush		= qcow_kiocb_flush,
	.punch		= qcow_kiocb_punch,
	.truncate	= qcow_kiocb_truncate,
};

/**
 * qcow_layer_can_write_async() - whether @l's write_async can start writes
 * @l: a layer
 *
 * Return: false when it has none, or would refuse every one (a file
 * without direct I/O).
 */
bool qcow_layer_can_write_async(const struct qcow_layer *l)
{
	return l->ops->write_async &&
	       (l->ops != &qcow_file_layer_ops || l->dio);
}

/**
 * qcow_file_read_async() - start an asynchronous direct read
 * @l: layer whose file is read
 * @iocb: kiocb owned by the caller until @done runs
 * @iter: destination (a bvec iterator over a block request)
 * @pos: file offset
 * @done: completion, called exactly once with the byte count or an error,
 *	  possibly before this function returns and possibly in IRQ context
 *
 * Return: 0 when the read was started (@done will run), -EAGAIN when it
 * cannot be done asynchronously (no direct I/O, unaligned): the caller
 * then reads synchronously.
 */
int qcow_file_read_async(struct qcow_layer *l, struct kiocb *iocb,
			 struct iov_iter *iter, loff_t pos,
			 void (*done)(struct kiocb *iocb, long ret))
{
	return qcow_file_rw_async(l, iocb, iter, pos, 0, done);
}

/**
 * qcow_file_rw_async() - start an asynchronous direct read or write
 * @l: layer whose file is accessed
 * @iocb: kiocb owned by the caller until @done runs
 * @iter: data (a bvec iterator over a block request); its direction
 *	  selects read or write
 * @pos: file offset
 * @flags: extra IOCB_* flags (IOCB_DSYNC for FUA writes)
 * @done: completion, called exactly once with the byte count or an error,
 *	  possibly before this function returns and possibly in IRQ context
 *
 * Return: 0 when the I/O was started (@done will run), -EAGAIN when it
 * cannot be done asynchronously (no direct I/O, unaligned): the caller
 * then does it synchronously.
 */
int qcow_file_rw_async(struct qcow_layer *l, struct kiocb *iocb,
		       struct iov_iter *iter, loff_t pos, int flags,
		       void (*done)(struct kiocb *iocb, long ret))
{
	ssize_t ret;

	if (l->ops != &qcow_file_layer_ops || !l->dio ||
	    !qcow_dio_aligned(iter, pos) ||
	    (iov_iter_count(iter) & (SECTOR_SIZE - 1)))
		return -EAGAIN;
	memset(iocb, 0, sizeof(*iocb));
	iocb->ki_filp = l->file;
	iocb->ki_pos = pos;
	iocb->ki_complete = done;
	iocb->ki_flags = IOCB_DIRECT | flags;
	iocb->ki_ioprio = IOPRIO_PRIO_VALUE(IOPRIO_CLASS_NONE, 0);
	if (iov_iter_rw(iter) == WRITE)
		ret = call_write_iter(l->file, iocb, iter);
	else
		ret = call_read_iter(l->file, iocb, iter);
	if (ret != -EIOCBQUEUED)
		done(iocb, ret);
	return 0;
}

/**
 * qcow_file_read() - read into a kernel buffer (buffered I/O)
 * @l: layer whose file is read
 * @buf: destination
 * @len: bytes
 * @pos: file offset
 *
 * Return: 0 or -EIO; bytes past EOF read as zeros.
 */
int qcow_file_read(struct qcow_layer *l, void *buf, size_t len, loff_t pos)
{
	struct iov_iter iter;
	struct kvec kv = { .iov_base = buf, .iov_len = len };

	iov_iter_kvec(&iter, READ, &kv, 1, len);
	return qcow_file_read_iter(l, &iter, len, pos);
}

/**
 * qcow_file_write() - write a kernel buffer to a layer's file
 * @l: layer
 * @buf: source
 * @len: bytes
 * @pos: file offset
 *
 * Return: 0, -ENOSPC or -EIO.
 */
int qcow_file_write(struct qcow_layer *l, const void *buf, size_t len,
		    loff_t pos)
{
	struct iov_iter iter;
	struct kvec kv = { .iov_base = (void *)buf, .iov_len = len };

	iov_iter_kvec(&iter, WRITE, &kv, 1, len);
	return l->ops->write_iter(l, &iter, len, pos, false);
}
