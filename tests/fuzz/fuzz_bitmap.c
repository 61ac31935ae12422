// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_bitmap: bitmap directory entries, walked as qcowctl check walks
 * the directory a bitmaps header extension points to.
 *
 * Input: 1 byte (cluster_bits = 9 + b % 13), then the directory.
 *
 * Properties:
 *  - a diag is set exactly when an entry is refused, naming a field;
 *  - an accepted entry has the fields the bytes hold (decoded here
 *    independently) and keeps the documented bounds: name of 1..1023
 *    bytes inside the buffer after the extra data, dirty-tracking type,
 *    granularity 9..31, known flags, a table of 1..2^27 entries at a
 *    non-zero, cluster-aligned offset;
 *  - consumed is the entry padded to 8 bytes, never more than what is
 *    left, so the walk always advances inside the buffer.
 */
#include "fuzz_common.h"

FUZZ_TARGET
{
	struct qcow2_header h;
	struct qcow2_bitmap bm;
	struct qcow2_diag diag;
	size_t len, pos = 0, used, esize;
	u32 cb, n = 0;
	const u8 *d;
	u8 *buf;
	int err;

	if (size < 1)
		return 0;
	cb = 9 + data[0] % 13;
	err = fuzz_make_header(&h, 3, cb, 0, 4, 2ULL << cb);
	FUZZ_CHECK(!err, "minimal header refused: %d", err);
	len = size - 1;
	buf = fuzz_dup(data + 1, len);

	while (pos < len && n++ < 65535) {
		fuzz_diag_poison(&diag);
		err = qcow2_bitmap_dir_entry_parse(&h, buf + pos, len - pos, &bm, &used,
						   &diag);
		fuzz_diag_check(err, &diag);
		FUZZ_CHECK(used <= len - pos, "consumed %zu of %zu", used, len - pos);
		if (err) {
			FUZZ_CHECK(err == -EINVAL, "err %d", err);
			break;
		}
		d = buf + pos;
		esize = 24 + (size_t)get_unaligned_be32(d + 20) +
			get_unaligned_be16(d + 18);
		FUZZ_CHECK(esize <= len - pos, "entry of %zu bytes in %zu", esize,
			   len - pos);
		FUZZ_CHECK(used == min_t(size_t, round_up(esize, 8), len - pos),
			   "consumed %zu for an entry of %zu bytes", used, esize);
		FUZZ_CHECK(bm.table_offset == be64_at(d) &&
			   bm.table_size == get_unaligned_be32(d + 8) &&
			   bm.flags == get_unaligned_be32(d + 12) && bm.type == d[16] &&
			   bm.granularity_bits == d[17] &&
			   bm.name_len == get_unaligned_be16(d + 18) &&
			   bm.extra_data_size == get_unaligned_be32(d + 20),
			   "fields differ from the bytes");
		FUZZ_CHECK((const u8 *)bm.name == d + 24 + bm.extra_data_size &&
			   bm.name_len >= 1 && bm.name_len <= QCOW2_BITMAP_MAX_NAME,
			   "name");
		FUZZ_CHECK(bm.type == QCOW2_BITMAP_TYPE_DIRTY &&
			   bm.granularity_bits >= 9 && bm.granularity_bits <= 31 &&
			   !(bm.flags & ~QCOW2_BITMAP_FLAGS_KNOWN), "type/granularity/flags");
		FUZZ_CHECK(bm.table_size >= 1 &&
			   bm.table_size <= QCOW2_BITMAP_MAX_TABLE_SIZE &&
			   bm.table_offset && bm.table_offset % h.cluster_size == 0,
			   "bitmap table");
		FUZZ_CHECK(used >= 24, "walk does not advance");
		pos += used;
	}
	free(buf);
	return 0;
}
