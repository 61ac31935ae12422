// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_entries: L1, L2 (standard and extended), compressed descriptors,
 * refcount table entries and refcount blocks.
 *
 * Input: 1 byte geometry (cluster_bits = 9 + b % 13), 1 byte flags (bit 0
 * version 3, bit 1 extended L2, bit 2 external data file, bits 3..5
 * refcount_order), 8 bytes big-endian file size.  The header is built and
 * parsed by the code under test, so the geometry is the module's.
 * Then 64 bytes of a refcount block, 1 byte n and n refcount_set
 * operations of 11 bytes (index, value, right shift of the value), then
 * records: an entry word, followed with extended L2 by its bitmap word
 * (so a real L1, L2 or refcount table can serve as input).
 *
 * Properties:
 *  - each decoder agrees with a model written from QEMU's
 *    docs/interop/qcow2.rst (accept/refuse, cluster type, offsets), so a
 *    check that is too weak or too strict shows up;
 *  - accepted entries: offsets cluster aligned, past the header cluster,
 *    inside the file; compressed spans non-empty, at most two clusters
 *    (2^(cluster_bits + 1)) and not wrapping; every subcluster of an
 *    accepted extended entry has a valid type and the runs partition the
 *    cluster;
 *  - encoders invert decoders bit for bit (L1, L2, bitmap, compressed
 *    descriptor, refcount table entry), and qcow2_compressed_encode()
 *    refuses exactly what does not fit;
 *  - qcow2_l2_get/set round trip and leave neighbouring entries alone;
 *  - refcount blocks of every order against a byte-level model of the
 *    spec's packing: set refuses values that do not fit and leaves the
 *    block untouched then, get returns what set stored;
 *  - the lenient inspectors for checkers (L1, L2, refcount table, bitmap
 *    table entries) report exactly the problems the model finds and call
 *    an entry valid exactly when the decoder accepts it;
 *  - the geometry helpers (L1/L2/subcluster index, guest offset)
 *    recompose the offset.
 */
#include "fuzz_common.h"

static struct qcow2_header hdr;
static u64 file_size;
static bool data_file;

/* A one-cluster table pointer (L1 entry, refcount table entry). */
static int model_ptr(u64 raw, u64 mask, u64 reserved, u64 *off)
{
	*off = 0;
	if (raw & reserved)
		return -EINVAL;
	if (!(raw & mask))
		return 0;
	*off = raw & mask;
	if (*off % hdr.cluster_size || *off < hdr.cluster_size || *off >= file_size)
		return -EINVAL;
	return 0;
}

/*
 * The lenient inspectors (for checkers) list exactly the problems the
 * model finds, always give the offset bits, and call an entry valid
 * exactly when the decoder accepts it.
 */
static void check_ptr_inspect(u32 bad, u64 ioff, u64 raw, u64 mask, u64 reserved,
			      int derr, u64 doff, const char *what)
{
	u64 off = raw & mask;
	u32 want = 0;

	if (raw & reserved)
		want |= QCOW2_BAD_RESERVED;
	if (off && off % hdr.cluster_size)
		want |= QCOW2_BAD_UNALIGNED;
	if (off && off < hdr.cluster_size)
		want |= QCOW2_BAD_IN_HEADER;
	if (off && off >= file_size)
		want |= QCOW2_BAD_PAST_EOF;
	FUZZ_CHECK(bad == want && ioff == off, "%s inspect 0x%llx: 0x%x, model 0x%x",
		   what, raw, bad, want);
	FUZZ_CHECK(!bad == !derr, "%s 0x%llx: inspect 0x%x but decode %d", what, raw,
		   bad, derr);
	if (!bad)
		FUZZ_CHECK(ioff == doff, "%s inspect offset", what);
}

static void check_bitmap_entry(u64 raw)
{
	u64 off = raw & QCOW2_BME_OFFSET_MASK, ioff;
	u32 bad = qcow2_bitmap_table_entry_inspect(&hdr, raw, file_size, &ioff);
	u32 want = 0;

	if (raw & (GENMASK_ULL(63, 56) | GENMASK_ULL(8, 1)))
		want |= QCOW2_BAD_RESERVED;
	if (off && off % hdr.cluster_size)
		want |= QCOW2_BAD_UNALIGNED;
	if (off && off < hdr.cluster_size)
		want |= QCOW2_BAD_IN_HEADER;
	if (off && off >= file_size)
		want |= QCOW2_BAD_PAST_EOF;
	if (off && raw & 1)
		want |= QCOW2_BAD_ALL_ONES;
	FUZZ_CHECK(bad == want && ioff == off,
		   "bitmap table entry 0x%llx: 0x%x, model 0x%x", raw, bad, want);
}

static void check_l1(u64 raw)
{
	u64 off = 1, moff;
	bool copied;
	int err, want;

	err = qcow2_l1e_decode(&hdr, raw, file_size, &off, &copied);
	want = model_ptr(raw, GENMASK_ULL(55, 9),
			 GENMASK_ULL(62, 56) | GENMASK_ULL(8, 0), &moff);
	FUZZ_CHECK(err == want, "L1 0x%llx: %d, model %d", raw, err, want);
	FUZZ_CHECK(copied == !!(raw >> 63), "L1 copied");
	check_ptr_inspect(qcow2_l1e_inspect(&hdr, raw, file_size, &moff), moff, raw,
			  GENMASK_ULL(55, 9), GENMASK_ULL(62, 56) | GENMASK_ULL(8, 0),
			  err, off, "L1");
	if (err)
		return;
	FUZZ_CHECK(off == moff, "L1 0x%llx offset 0x%llx, model 0x%llx", raw, off, moff);
	FUZZ_CHECK(qcow2_l1e_encode(off, copied) == raw, "L1 encode 0x%llx", raw);
}

static void check_reftable(u64 raw)
{
	u64 off = 1, moff;
	int err, want;

	err = qcow2_reftable_entry_decode(&hdr, raw, file_size, &off);
	want = model_ptr(raw, GENMASK_ULL(63, 9), GENMASK_ULL(8, 0), &moff);
	FUZZ_CHECK(err == want, "reftable 0x%llx: %d, model %d", raw, err, want);
	check_ptr_inspect(qcow2_reftable_entry_inspect(&hdr, raw, file_size, &moff),
			  moff, raw, GENMASK_ULL(63, 9), GENMASK_ULL(8, 0), err, off,
			  "reftable");
	if (!err)
		FUZZ_CHECK(off == moff && off == raw, "reftable offset 0x%llx", off);
}

/*
 * The L2 entry model, straight from qcow2.rst: compressed descriptor
 * (bit 62) with x = 62 - (cluster_bits - 8) offset bits and the
 * additional sector count above; standard descriptor with bits 9..55 the
 * host offset, bit 0 the zero flag (v3, not with extended L2), bits 1..8
 * and 56..61 reserved; extended L2 bitmaps with no subcluster both
 * allocated and zero, none allocated without a host cluster, and all zero
 * for compressed clusters.  With an external data file, offset 0 is a
 * real host offset when COPIED is set, and compression is impossible.
 */
static int model_l2(u64 word, u64 bitmap, struct qcow2_l2e *m)
{
	u64 cs = hdr.cluster_size, off;
	u32 x = 62 - (hdr.cluster_bits - 8);
	bool copied = word >> 63, zero = word & 1;
	u32 alloc = bitmap, zbm = bitmap >> 32;

	memset(m, 0, sizeof(*m));
	m->copied = copied;
	if (word & BIT_ULL(62)) {
		u64 nsect = (word >> x) & ((1ULL << (hdr.cluster_bits - 8)) - 1);

		m->type = QCOW2_CLUSTER_COMPRESSED;
		m->comp_offset = word & ((1ULL << x) - 1);
		m->comp_len = (nsect + 1) * 512 - m->comp_offset % 512;
		if (copied || data_file || (hdr.extended_l2 && bitmap))
			return -EINVAL;
		if (!m->comp_offset || m->comp_offset >= BIT_ULL(56) ||
		    m->comp_offset < cs || m->comp_offset >= file_size)
			return -EINVAL;
		return 0;
	}
	if (word & (GENMASK_ULL(61, 56) | GENMASK_ULL(8, 1)))
		return -EINVAL;
	if (zero && (hdr.version == 2 || hdr.extended_l2))
		return -EINVAL;
	off = word & GENMASK_ULL(55, 9);
	if (off % cs)
		return -EINVAL;
	if (hdr.extended_l2) {
		m->alloc_bitmap = alloc;
		m->zero_bitmap = zbm;
		if (alloc & zbm)
			return -EINVAL;
	}
	m->host_offset = off;
	if (!off && !(data_file && copied)) {
		m->type = zero ? QCOW2_CLUSTER_ZERO_PLAIN : QCOW2_CLUSTER_UNALLOCATED;
		return copied || m->alloc_bitmap ? -EINVAL : 0;
	}
	m->type = zero ? QCOW2_CLUSTER_ZERO_ALLOC : QCOW2_CLUSTER_NORMAL;
	/*
	 * Data is read only from a normal cluster: a preallocated zero
	 * cluster may lie past the end of the file (qcow2_format_test.c).
	 */
	if (!data_file && (off < cs || (!zero && off >= file_size)))
		return -EINVAL;
	return 0;
}

static void check_subclusters(const struct qcow2_l2e *e)
{
	unsigned int sc, run, i;
	enum qcow2_subcluster_type t;

	if (!hdr.extended_l2 || e->type == QCOW2_CLUSTER_COMPRESSED) {
		t = qcow2_l2e_subcluster_type(&hdr, e, 0);
		FUZZ_CHECK(t != QCOW2_SUBCLUSTER_INVALID, "cluster type %d invalid", e->type);
		FUZZ_CHECK(qcow2_l2e_subcluster_run(&hdr, e, 0) == 1, "run");
		return;
	}
	for (sc = 0; sc < QCOW2_SUBCLUSTERS; sc += run) {
		t = qcow2_l2e_subcluster_type(&hdr, e, sc);
		FUZZ_CHECK(t != QCOW2_SUBCLUSTER_INVALID, "subcluster %u invalid", sc);
		if (e->alloc_bitmap & BIT(sc))
			FUZZ_CHECK(t == QCOW2_SUBCLUSTER_NORMAL, "allocated subcluster %u", sc);
		else if (e->zero_bitmap & BIT(sc))
			FUZZ_CHECK(t == QCOW2_SUBCLUSTER_ZERO_PLAIN ||
				   t == QCOW2_SUBCLUSTER_ZERO_ALLOC, "zero subcluster %u", sc);
		run = qcow2_l2e_subcluster_run(&hdr, e, sc);
		FUZZ_CHECK(run >= 1 && sc + run <= QCOW2_SUBCLUSTERS, "run %u at %u", run, sc);
		for (i = sc; i < sc + run; i++)
			FUZZ_CHECK(qcow2_l2e_subcluster_type(&hdr, e, i) == t,
				   "run at %u not uniform", sc);
		FUZZ_CHECK(sc + run == QCOW2_SUBCLUSTERS ||
			   qcow2_l2e_subcluster_type(&hdr, e, sc + run) != t,
			   "run at %u stops early", sc);
	}
	FUZZ_CHECK(qcow2_l2e_subcluster_type(&hdr, e, QCOW2_SUBCLUSTERS) ==
		   QCOW2_SUBCLUSTER_INVALID, "subcluster 32");
}

/*
 * The subcluster helpers on any entry, decoded or not (callers may hold
 * one a later check refused): a defined type, runs within the cluster.
 */
static void check_subcluster_any(u64 word, u64 bitmap)
{
	struct qcow2_l2e e = {
		.type = word % 5,
		.host_offset = word & QCOW2_L2E_OFFSET_MASK,
		.alloc_bitmap = bitmap,
		.zero_bitmap = bitmap >> 32,
	};
	unsigned int sc = (word >> 3) % 40, run;
	enum qcow2_subcluster_type t = qcow2_l2e_subcluster_type(&hdr, &e, sc);

	FUZZ_CHECK(t >= QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN &&
		   t <= QCOW2_SUBCLUSTER_INVALID, "subcluster type %d", t);
	run = qcow2_l2e_subcluster_run(&hdr, &e, sc);
	FUZZ_CHECK(run >= 1 && (sc >= QCOW2_SUBCLUSTERS || sc + run <= QCOW2_SUBCLUSTERS),
		   "run %u at %u", run, sc);
}

static void check_l2(u64 word, u64 bitmap)
{
	struct qcow2_l2e e, m, ie;
	u64 enc, eoff, espan;
	int err, want;
	u32 bad;

	if (!hdr.extended_l2)
		bitmap = 0;
	err = qcow2_l2e_decode(&hdr, word, bitmap, file_size, &e);
	want = model_l2(word, bitmap, &m);
	FUZZ_CHECK(err == want, "L2 0x%llx/0x%llx: %d, model %d", word, bitmap, err, want);
	bad = qcow2_l2e_inspect(&hdr, word, bitmap, file_size, &ie);
	FUZZ_CHECK(!bad == !err, "L2 0x%llx/0x%llx: inspect 0x%x but decode %d",
		   word, bitmap, bad, err);
	if (err)
		return;
	FUZZ_CHECK(!memcmp(&ie, &e, sizeof(e)), "L2 inspect decodes unlike decode");
	FUZZ_CHECK(e.type == m.type && e.copied == m.copied &&
		   e.host_offset == m.host_offset && e.comp_offset == m.comp_offset &&
		   e.comp_len == m.comp_len && e.alloc_bitmap == m.alloc_bitmap &&
		   e.zero_bitmap == m.zero_bitmap, "L2 0x%llx/0x%llx decoded unlike the model",
		   word, bitmap);

	switch (e.type) {
	case QCOW2_CLUSTER_COMPRESSED:
		FUZZ_CHECK(e.comp_offset >= hdr.cluster_size && e.comp_offset < file_size,
			   "compressed offset 0x%llx", e.comp_offset);
		FUZZ_CHECK(e.comp_len >= 1 && e.comp_len <= 2 * hdr.cluster_size &&
			   (u128)e.comp_offset + e.comp_len <= BIT_ULL(57),
			   "compressed span %llu", e.comp_len);
		err = qcow2_compressed_encode(hdr.cluster_bits, e.comp_offset,
					      e.comp_len, &enc);
		FUZZ_CHECK(!err && enc == word, "compressed re-encode 0x%llx -> 0x%llx",
			   word, enc);
		err = qcow2_compressed_decode(hdr.cluster_bits, word, &eoff, &espan);
		FUZZ_CHECK(!err && eoff == e.comp_offset && espan == e.comp_len,
			   "compressed_decode");
		break;
	case QCOW2_CLUSTER_NORMAL:
	case QCOW2_CLUSTER_ZERO_ALLOC:
		FUZZ_CHECK(e.host_offset % hdr.cluster_size == 0, "host offset alignment");
		if (!data_file)
			FUZZ_CHECK(e.host_offset >= hdr.cluster_size &&
				   (e.host_offset < file_size ||
				    e.type == QCOW2_CLUSTER_ZERO_ALLOC),
				   "host offset 0x%llx outside the file", e.host_offset);
		fallthrough;
	default:
		enc = qcow2_l2e_encode_std(e.host_offset, e.copied,
					   e.type == QCOW2_CLUSTER_ZERO_PLAIN ||
					   e.type == QCOW2_CLUSTER_ZERO_ALLOC);
		FUZZ_CHECK(enc == word, "L2 re-encode 0x%llx -> 0x%llx", word, enc);
		if (hdr.extended_l2)
			FUZZ_CHECK(qcow2_l2e_encode_bitmap(e.alloc_bitmap, e.zero_bitmap) ==
				   bitmap, "bitmap re-encode");
		break;
	}
	check_subclusters(&e);
}

/* Compressed descriptors from arbitrary (offset, length) requests. */
static void check_compressed_encode(u64 off, u64 len)
{
	u32 cb = hdr.cluster_bits, x = 62 - (cb - 8);
	u64 word = 0, doff, span;
	u128 sectors;
	int err, want;

	sectors = ((u128)(off % 512) + len + 511) / 512;
	want = !len || !off || off >= BIT_ULL(56) || off >= 1ULL << x ||
	       sectors > 1ULL << (cb - 8) ? -ERANGE : 0;
	err = qcow2_compressed_encode(cb, off, len, &word);
	FUZZ_CHECK(err == want, "compressed_encode(0x%llx, %llu): %d, model %d",
		   off, len, err, want);
	if (err)
		return;
	FUZZ_CHECK(word & QCOW2_OFLAG_COMPRESSED && !(word & QCOW2_OFLAG_COPIED),
		   "compressed flags");
	err = qcow2_compressed_decode(cb, word, &doff, &span);
	FUZZ_CHECK(!err && doff == off && span >= len && span - len < 512 &&
		   (span + off) % 512 == 0,
		   "compressed decode of encode: off 0x%llx len %llu -> 0x%llx %llu",
		   off, len, doff, span);
}

static void check_l2_table(u64 word, u64 bitmap, u32 idx)
{
	size_t esz = hdr.l2_entry_size, n = 8, i;
	u8 table[8 * 16], before[8 * 16];
	u64 w, b;

	for (i = 0; i < sizeof(table); i++)
		table[i] = (u8)(word >> (i % 8 * 8)) ^ (u8)i;
	memcpy(before, table, sizeof(table));
	idx %= n;
	qcow2_l2_set(&hdr, table, idx, word, bitmap);
	qcow2_l2_get(&hdr, table, idx, &w, &b);
	FUZZ_CHECK(w == word && b == (hdr.extended_l2 ? bitmap : 0), "l2 get/set");
	FUZZ_CHECK(be64_at(table + idx * esz) == word, "l2_set not big endian");
	FUZZ_CHECK(!memcmp(table, before, idx * esz) &&
		   !memcmp(table + (idx + 1) * esz, before + (idx + 1) * esz,
			   (n - idx - 1) * esz), "l2_set touched a neighbour");
}

/* The spec's refcount packing, independently: LSB first below 8 bits. */
static u64 model_ref_get(const u8 *b, u32 order, size_t i)
{
	u32 bits = 1U << order;
	u64 v = 0;
	u32 k;

	if (bits < 8)
		return (b[i * bits / 8] >> (i * bits % 8)) & ((1U << bits) - 1);
	for (k = 0; k < bits / 8; k++)
		v = v << 8 | b[i * bits / 8 + k];
	return v;
}

static void check_refcounts(struct fuzz_in *in)
{
	u32 order = hdr.refcount_order, bits = 1U << order;
	size_t bytes = 64, entries = bytes * 8 / bits, i, k, ops;
	u64 max = bits == 64 ? U64_MAX : (1ULL << bits) - 1;
	u8 *blk, snap[64];
	u64 model[512];

	FUZZ_CHECK(qcow2_refcount_max(order) == max, "refcount_max(%u)", order);
	blk = malloc(bytes);
	if (!blk)
		abort();
	for (i = 0; i < bytes; i++)
		blk[i] = fuzz_u8(in);
	for (i = 0; i < entries; i++) {
		model[i] = model_ref_get(blk, order, i);
		FUZZ_CHECK(qcow2_refcount_get(blk, order, i) == model[i],
			   "refcount_get(order %u, %zu)", order, i);
	}
	ops = fuzz_u8(in) % 32;
	for (k = 0; k < ops; k++) {
		size_t idx = fuzz_u(in, 2) % entries;
		u64 v = fuzz_u64(in);
		int err;

		v >>= fuzz_u8(in) % 64;
		memcpy(snap, blk, bytes);
		err = qcow2_refcount_set(blk, order, idx, v);
		if (v > max) {
			FUZZ_CHECK(err == -ERANGE && !memcmp(snap, blk, bytes),
				   "refcount_set(%llu) with max %llu", v, max);
			continue;
		}
		FUZZ_CHECK(!err, "refcount_set(%llu): %d", v, err);
		model[idx] = v;
		/* The entry and the neighbours sharing its byte; all at the end. */
		for (i = idx ? idx - 1 : 0; i <= idx + 1 && i < entries; i++)
			FUZZ_CHECK(model_ref_get(blk, order, i) == model[i] &&
				   qcow2_refcount_get(blk, order, i) == model[i],
				   "order %u entry %zu after set of %zu", order, i, idx);
	}
	for (i = 0; i < entries; i++)
		FUZZ_CHECK(model_ref_get(blk, order, i) == model[i] &&
			   qcow2_refcount_get(blk, order, i) == model[i],
			   "order %u entry %zu after %zu sets", order, i, ops);
	free(blk);
}

static void check_geometry(u64 off)
{
	u64 l1 = qcow2_l1_index(&hdr, off);
	u32 l2 = qcow2_l2_index(&hdr, off);
	u64 in = qcow2_offset_in_cluster(&hdr, off);
	u32 sc = qcow2_subcluster_index(&hdr, off);
	u64 size = off >> 3;	/* up to 2^61 */
	u128 per_l1 = (u128)hdr.cluster_size << hdr.l2_bits;

	FUZZ_CHECK(l2 < 1U << hdr.l2_bits && in < hdr.cluster_size, "indices");
	FUZZ_CHECK(((u128)l1 * per_l1) + (u128)l2 * hdr.cluster_size + in == off,
		   "geometry does not recompose 0x%llx", off);
	FUZZ_CHECK(qcow2_guest_offset(&hdr, l1, l2) == off - in, "guest_offset");
	FUZZ_CHECK(sc < (hdr.extended_l2 ? 32U : 1U) &&
		   (u64)sc << hdr.subcluster_bits <= in &&
		   in < (u64)(sc + 1) << hdr.subcluster_bits, "subcluster index");
	FUZZ_CHECK(qcow2_l1_entries_needed(size, hdr.cluster_bits, hdr.extended_l2) ==
		   (size + per_l1 - 1) / per_l1, "l1_entries_needed(%llu)", size);
}

FUZZ_TARGET
{
	struct fuzz_in in;
	u32 cb, version, order;
	u64 incompat = 0;
	u8 flags;
	int err;

	if (size < 10)
		return 0;
	fuzz_in_init(&in, data, size);
	cb = 9 + fuzz_u8(&in) % 13;
	flags = fuzz_u8(&in);
	file_size = fuzz_u64(&in);
	version = flags & 1 ? 3 : 2;
	order = version == 3 ? (flags >> 3 & 7) % 7 : 4;
	if (version == 3 && flags & 2 && cb >= QCOW2_MIN_EXT_L2_CLUSTER_BITS)
		incompat |= QCOW2_INCOMPAT_EXTL2;
	if (version == 3 && flags & 4)
		incompat |= QCOW2_INCOMPAT_DATA_FILE;
	data_file = incompat & QCOW2_INCOMPAT_DATA_FILE;
	if (file_size < 2ULL << cb)
		file_size = 2ULL << cb;
	err = fuzz_make_header(&hdr, version, cb, incompat, order, file_size);
	FUZZ_CHECK(!err, "minimal header refused: %d", err);

	check_refcounts(&in);

	/* Records: an entry word, and its bitmap word with extended L2. */
	while (fuzz_in_left(&in) >= hdr.l2_entry_size) {
		u64 word = fuzz_u64(&in);
		u64 bitmap = hdr.extended_l2 ? fuzz_u64(&in) : 0;
		u64 len = hdr.extended_l2 ? bitmap : word ^ (word >> 29);

		check_l1(word);
		check_reftable(word);
		check_bitmap_entry(word);
		check_l2(word, bitmap);
		check_subcluster_any(word, bitmap);
		check_l2_table(word, bitmap, (u32)(word >> 9));
		check_compressed_encode(word & GENMASK_ULL(62, 0), len >> (word % 64));
		check_geometry(word);
	}
	return 0;
}
