// SPDX-License-Identifier: GPL-2.0
/*
 * qcow: the read path.
 *
 * qcow_layer_read() fills an iov_iter from one layer of the chain: data
 * clusters are read from the image file (direct I/O for block requests),
 * unallocated ranges come from the next layer down (or zeros), zero
 * clusters and subclusters are zeros, compressed clusters are inflated
 * (deflate or zstd) into a one-cluster cache.  Past the end of a layer,
 * reads return zeros, so a backing file shorter than the image is fine.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/slab.h>
#include <linux/uio.h>
#include <linux/vmalloc.h>
#include <linux/zlib.h>
#include <linux/zstd.h>

#include "qcow_main.h"

static int qcow_zero(struct iov_iter *iter, size_t len)
{
	return iov_iter_zero(len, iter) == len ? 0 : -EIO;
}

/**
 * qcow_decompress_init() - allocate decompression buffers on first use
 * @img: image; called with @img->decomp_lock held
 *
 * Return: 0 or -ENOMEM.
 */
int qcow_decompress_init(struct qcow_image *img)
{
	const struct qcow2_header *h = img->hdr;
	size_t window = max_t(size_t, h->cluster_size, 1U << 10);

	lockdep_assert_held(&img->decomp_lock);
	if (img->decomp_buf)
		return 0;
	img->comp_buf = kvmalloc(2 * h->cluster_size, GFP_NOIO);
	img->decomp_buf = kvmalloc(h->cluster_size, GFP_NOIO);
	if (h->compression_type == QCOW2_COMPRESSION_ZSTD) {
		img->zstd_ws_size = zstd_dstream_workspace_bound(window);
		img->zstd_ws = kvmalloc(img->zstd_ws_size, GFP_NOIO);
	} else {
		img->zlib_ws = kvmalloc(zlib_inflate_workspacesize(), GFP_NOIO);
	}
	if (!img->comp_buf || !img->decomp_buf ||
	    (!img->zstd_ws && !img->zlib_ws)) {
		qcow_decompress_free(img);
		return -ENOMEM;
	}
	return 0;
}

/**
 * qcow_decompress_free() - free decompression buffers
 * @img: image
 */
void qcow_decompress_free(struct qcow_image *img)
{
	kvfree(img->comp_buf);
	kvfree(img->decomp_buf);
	kvfree(img->zstd_ws);
	kvfree(img->zlib_ws);
	img->comp_buf = NULL;
	img->decomp_buf = NULL;
	img->zstd_ws = NULL;
	img->zlib_ws = NULL;
	img->decomp_valid = false;
}

/* Raw deflate (no zlib header), as QEMU writes it. */
static int qcow_inflate(struct qcow_image *img, const void *src, size_t slen,
			void *dst, size_t dlen)
{
	struct z_stream_s strm = {
		.workspace = img->zlib_ws,
		.next_in = src,
		.avail_in = slen,
		.next_out = dst,
		.avail_out = dlen,
	};
	int ret;

	if (zlib_inflateInit2(&strm, -MAX_WBITS) != Z_OK)
		return -EIO;
	ret = zlib_inflate(&strm, Z_FINISH);
	zlib_inflateEnd(&strm);
	/* The stream may end exactly at the cluster or be cut off there. */
	if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR || ret == Z_OK) &&
	    !strm.avail_out)
		return 0;
	return -EIO;
}

static int qcow_unzstd(struct qcow_image *img, const void *src, size_t slen,
		       void *dst, size_t dlen)
{
	size_t window = max_t(size_t, img->hdr->cluster_size, 1U << 10);
	zstd_in_buffer in = { .src = src, .size = slen, .pos = 0 };
	zstd_out_buffer out = { .dst = dst, .size = dlen, .pos = 0 };
	zstd_dstream *ds;
	size_t ret;

	ds = zstd_init_dstream(window, img->zstd_ws, img->zstd_ws_size);
	if (!ds)
		return -EIO;
	/* The input may hold bytes past the frame: stop once output is full. */
	while (out.pos < out.size) {
		size_t in_before = in.pos, out_before = out.pos;

		ret = zstd_decompress_stream(ds, &out, &in);
		if (zstd_is_error(ret))
			return -EIO;
		if (!ret && out.pos < out.size)
			return -EIO;	/* frame ended short of a cluster */
		if (in.pos == in_before && out.pos == out_before)
			return -EIO;	/* no progress: truncated input */
	}
	return 0;
}

static int qcow_read_compressed(struct qcow_layer *l, const struct qcow_extent *ext,
				u64 pos, struct iov_iter *iter, size_t len)
{
	struct qcow_image *img = l->img;
	const struct qcow2_header *h = img->hdr;
	u64 in_cluster = qcow2_offset_in_cluster(h, pos);
	size_t rlen;
	int err;

	mutex_lock(&img->decomp_lock);
	err = qcow_decompress_init(img);
	if (err)
		goto out;
	if (!img->decomp_valid || img->decomp_host != ext->comp_offset) {
		img->decomp_valid = false;
		rlen = min_t(u64, ext->comp_len, img->file_size - ext->comp_offset);
		rlen = min_t(size_t, rlen, 2 * h->cluster_size);
		err = qcow_file_read(l, img->comp_buf, rlen, ext->comp_offset);
		if (err)
			goto out;
		if (h->compression_type == QCOW2_COMPRESSION_ZSTD)
			err = qcow_unzstd(img, img->comp_buf, rlen,
					  img->decomp_buf, h->cluster_size);
		else
			err = qcow_inflate(img, img->comp_buf, rlen,
					   img->decomp_buf, h->cluster_size);
		if (err) {
			qcow_image_corrupt(img, "bad compressed data at 0x%llx (guest 0x%llx)",
					   ext->comp_offset, pos);
			goto out;
		}
		img->decomp_valid = true;
		img->decomp_host = ext->comp_offset;
	}
	if (copy_to_iter(img->decomp_buf + in_cluster, len, iter) != len)
		err = -EIO;
out:
	mutex_unlock(&img->decomp_lock);
	return err;
}

/**
 * qcow_layer_read_async() - start reading a guest range of a layer as one
 *	asynchronous read, where it maps to one extent of one file
 * @l: layer
 * @pos: guest offset
 * @iter: destination, all of it (iov_iter_count() bytes)
 * @iocb: owned by the caller until @done runs
 * @done: completion, called exactly once with the byte count or an error,
 *	  possibly before this function returns and possibly in IRQ context
 * @nowait: do not read a table missing from a cache (-EAGAIN instead)
 *
 * The range is followed down the backing chain through unallocated
 * clusters to the data of one cluster run, or of a raw file, lying inside
 * its file.  The caller keeps what is read from being freed or changed
 * until @done: a copy-on-write read holds its guest clusters in
 * img->inflight; a guest read of the dispatcher starts at a backing layer,
 * which is read-only (a write to the top layer meanwhile may or may not
 * be seen, as with any read racing a write).
 *
 * Return: 0 when the read was started, -EAGAIN when the range maps to
 * anything else (zeros, compressed data, several extents, past the end of
 * a file, a layer without @read_async, a failed lookup): nothing was
 * started, read it with qcow_layer_read(), which reports any error.
 */
int qcow_layer_read_async(struct qcow_layer *l, u64 pos, struct iov_iter *iter,
			  struct kiocb *iocb,
			  void (*done)(struct kiocb *iocb, long ret),
			  bool nowait)
{
	size_t len = iov_iter_count(iter);
	struct qcow_extent ext;

	for (; l; l = l->backing) {
		if (!len || pos + len > l->size || !l->ops->read_async)
			return -EAGAIN;
		if (!l->img) {
			if (pos + len > l->ops->size(l))
				return -EAGAIN;
			return l->ops->read_async(l, iocb, iter, pos, done);
		}
		if ((nowait ? qcow_map_nowait(l->img, pos, len, &ext) :
			      qcow_map(l->img, pos, len, &ext)) || ext.len != len)
			return -EAGAIN;
		if (ext.type == QCOW2_SUBCLUSTER_NORMAL) {
			if (ext.host + len > l->ops->size(l))
				return -EAGAIN;
			return l->ops->read_async(l, iocb, iter, ext.host, done);
		}
		if (ext.type != QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN &&
		    ext.type != QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC)
			return -EAGAIN;
	}
	return -EAGAIN;
}

/**
 * qcow_layer_read() - read a guest range of one layer
 * @l: layer
 * @pos: guest offset in the layer
 * @iter: destination, advanced by @len on success
 * @len: bytes to read
 *
 * Return: 0, -EIO or -ENOMEM.
 */
int qcow_layer_read(struct qcow_layer *l, u64 pos, struct iov_iter *iter,
		    size_t len)
{
	struct qcow_extent ext;
	size_t n;
	int err;

	while (len) {
		if (pos >= l->size)
			return qcow_zero(iter, len);
		n = min_t(u64, len, l->size - pos);
		if (!l->img) {
			err = qcow_file_read_iter(l, iter, n, pos);
			if (err)
				return err;
			pos += n;
			len -= n;
			continue;
		}

		err = qcow_map(l->img, pos, n, &ext);
		if (err)
			return err;
		n = ext.len;
		switch (ext.type) {
		case QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN:
		case QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC:
			if (l->backing)
				err = qcow_layer_read(l->backing, pos, iter, n);
			else
				err = qcow_zero(iter, n);
			break;
		case QCOW2_SUBCLUSTER_ZERO_PLAIN:
		case QCOW2_SUBCLUSTER_ZERO_ALLOC:
			err = qcow_zero(iter, n);
			break;
		case QCOW2_SUBCLUSTER_NORMAL:
			err = qcow_file_read_iter(l, iter, n, ext.host);
			break;
		case QCOW2_SUBCLUSTER_COMPRESSED:
			err = qcow_read_compressed(l, &ext, pos, iter, n);
			break;
		default:
			err = -EIO;
			break;
		}
		if (err)
			return err;
		pos += n;
		len -= n;
	}
	return 0;
}
