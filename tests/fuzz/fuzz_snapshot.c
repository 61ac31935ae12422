// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_snapshot: snapshot table entries, parsed and written back.
 *
 * Input: 1 byte (bit 0: version 3, bits 1..: cluster_bits), 8 bytes
 * big-endian file size (with bit 63 set: two clusters plus the low 16
 * bits), 1 byte (bit 0: build an entry from raw bytes, see below; bit 1:
 * with raw extra data), then a snapshot table as stored at
 * snapshots_offset (at cluster 1).
 *
 * Properties:
 *  - every entry qcow2_snapshot_parse() accepts keeps its documented
 *    bounds (id 1..127 bytes, name <= 1023, no NUL, extra data <= 1024 and
 *    >= 16 for version 3, L1 table aligned and inside the file, disk size
 *    bounded), its pointers inside the buffer;
 *  - parse -> serialize -> parse gives back the same entry (with the extra
 *    data normalized to at least the 24 bytes known today), and a second
 *    serialize gives the very same bytes; serialize fills exactly
 *    qcow2_snapshot_entry_size() bytes and refuses a buffer one byte short
 *    without touching it;
 *  - qcow2_snapshot_table_check() over the parsed entries agrees with the
 *    entry-by-entry walk: same end, and a failing entry N is reported as
 *    "snapshot N: <the entry's own message>" with the entry's field;
 *  - an entry built from raw input bytes is serialized exactly when its
 *    lengths are in range, and parses back exactly when its id and name
 *    have no NUL byte and its disk size is in range.
 */
#include "fuzz_common.h"

static struct qcow2_header hdr;
static u64 file_size;

static void check_entry(const struct qcow2_snapshot *sn, const u8 *buf,
			size_t len, size_t used)
{
	const u8 *id = (const u8 *)sn->id, *name = (const u8 *)sn->name;
	size_t size = sizeof(struct qcow2_snapshot_disk) + sn->extra_data_size +
		      sn->id_len + sn->name_len;

	FUZZ_CHECK(size <= len, "entry of %zu bytes in %zu", size, len);
	FUZZ_CHECK(used == (round_up(size, 8) < len ? round_up(size, 8) : len),
		   "consumed %zu for an entry of %zu bytes in %zu", used, size, len);
	FUZZ_CHECK(sn->extra_data == buf + sizeof(struct qcow2_snapshot_disk) &&
		   id == sn->extra_data + sn->extra_data_size &&
		   name == id + sn->id_len, "pointers");
	FUZZ_CHECK(sn->id_len >= 1 && sn->id_len <= QCOW2_MAX_SNAPSHOT_ID_LEN &&
		   sn->name_len <= QCOW2_MAX_SNAPSHOT_NAME_LEN, "id/name length");
	FUZZ_CHECK(!memchr(id, 0, sn->id_len) && !memchr(name, 0, sn->name_len),
		   "NUL in id or name");
	FUZZ_CHECK(sn->extra_data_size <= QCOW2_MAX_SNAPSHOT_EXTRA, "extra size");
	FUZZ_CHECK(hdr.version < 3 || sn->extra_data_size >= 16, "v3 extra size");
	FUZZ_CHECK(sn->has_disk_size == (sn->extra_data_size >= 16), "has_disk_size");
	FUZZ_CHECK(!sn->has_disk_size || sn->disk_size <= QCOW2_MAX_VIRTUAL_SIZE,
		   "disk_size");
	FUZZ_CHECK(sn->extra_data_size >= 24 || sn->icount == -1, "icount default");
	FUZZ_CHECK(sn->extra_data_size >= 8 ||
		   sn->vm_state_size == get_unaligned_be32(buf + 32), "vm_state_size");
	FUZZ_CHECK((u64)sn->l1_size * 8 <= QCOW2_MAX_L1_BYTES, "l1_size");
	if (sn->l1_size)
		FUZZ_CHECK(sn->l1_table_offset % hdr.cluster_size == 0 &&
			   sn->l1_table_offset >= hdr.cluster_size &&
			   fuzz_in_file(sn->l1_table_offset, (u64)sn->l1_size * 8,
					file_size), "snapshot L1 placement");
}

/* serialize -> parse -> serialize: the same entry, then the same bytes. */
static void check_round_trip(const struct qcow2_snapshot *sn)
{
	size_t esize = qcow2_snapshot_entry_size(&hdr, sn), w1, w2, used;
	u32 extra = sn->extra_data_size > 24 ? sn->extra_data_size : 24;
	struct qcow2_snapshot back;
	struct qcow2_diag diag;
	u8 *out, *out2, *small;
	int err;

	FUZZ_CHECK(esize % 8 == 0 &&
		   esize == round_up(40 + extra + sn->id_len + sn->name_len, 8),
		   "entry_size %zu", esize);
	out = malloc(esize);
	out2 = malloc(esize);
	small = malloc(esize - 1);
	if (!out || !out2 || !small)
		abort();

	memset(small, 0xcc, esize - 1);
	err = qcow2_snapshot_serialize(&hdr, sn, small, esize - 1, &w1);
	FUZZ_CHECK(err == -ENOSPC, "serialize into a short buffer: %d", err);
	for (w1 = 0; w1 < esize - 1; w1++)
		FUZZ_CHECK(small[w1] == 0xcc, "short buffer written");

	err = qcow2_snapshot_serialize(&hdr, sn, out, esize, &w1);
	FUZZ_CHECK(!err && w1 == esize, "serialize: %d, %zu of %zu", err, w1, esize);

	fuzz_diag_poison(&diag);
	err = qcow2_snapshot_parse(&hdr, out, esize, file_size, &back, &used, &diag);
	fuzz_diag_check(err, &diag);
	FUZZ_CHECK(!err, "serialized entry refused: %s: %s", diag.field, diag.msg);
	check_entry(&back, out, esize, used);
	FUZZ_CHECK(used == esize, "consumed %zu of %zu", used, esize);
	FUZZ_CHECK(back.l1_table_offset == sn->l1_table_offset &&
		   back.l1_size == sn->l1_size && back.date_sec == sn->date_sec &&
		   back.date_nsec == sn->date_nsec &&
		   back.vm_clock_nsec == sn->vm_clock_nsec &&
		   back.vm_state_size == sn->vm_state_size &&
		   back.has_disk_size && back.disk_size == sn->disk_size &&
		   back.icount == sn->icount && back.extra_data_size == extra &&
		   back.id_len == sn->id_len && back.name_len == sn->name_len &&
		   !memcmp(back.id, sn->id, sn->id_len) &&
		   !memcmp(back.name, sn->name, sn->name_len), "round trip");
	if (sn->extra_data && sn->extra_data_size > 24)
		FUZZ_CHECK(!memcmp(back.extra_data + 24, sn->extra_data + 24,
				   sn->extra_data_size - 24), "unknown extra data lost");

	err = qcow2_snapshot_serialize(&hdr, &back, out2, esize, &w2);
	FUZZ_CHECK(!err && w2 == esize && !memcmp(out, out2, esize),
		   "second serialize differs");
	free(out);
	free(out2);
	free(small);
}

/* A table of @nb entries ending at @end (unpadded) must check the same. */
static void check_table(const u8 *buf, size_t len, u32 nb, size_t end,
			const struct qcow2_diag *bad, int bad_err)
{
	struct qcow2_header h = hdr;
	struct qcow2_diag diag;
	size_t table_len;
	char want[sizeof(diag.msg)];
	int err;

	h.nb_snapshots = nb;
	h.snapshots_offset = hdr.cluster_size;
	fuzz_diag_poison(&diag);
	err = qcow2_snapshot_table_check(&h, buf, len, file_size, &table_len, &diag);
	fuzz_diag_check(err, &diag);
	if (bad) {
		snprintf(want, sizeof(want), "snapshot %u: %s", nb - 1, bad->msg);
		FUZZ_CHECK(err == bad_err && diag.field == bad->field &&
			   !strcmp(diag.msg, want), "table diag '%s' for entry diag '%s'",
			   diag.msg, bad->msg);
		return;
	}
	if (!fuzz_in_file(h.snapshots_offset, end, file_size)) {
		FUZZ_CHECK(err == -EINVAL && !strcmp(diag.field, "snapshots_offset"),
			   "table past the file accepted");
		return;
	}
	FUZZ_CHECK(!err && table_len == end, "table check: %d, %zu vs %zu", err,
		   table_len, end);
}

/* An entry made of raw input: lengths and bytes as the input says. */
static void check_built(const u8 *p, size_t n, u8 sel)
{
	struct qcow2_snapshot sn = { 0 }, back;
	size_t esize, w, used;
	struct qcow2_diag diag;
	u8 *out;
	int err, want;

	if (n < 48)
		return;
	sn.l1_size = 0;
	sn.date_sec = get_unaligned_be32(p);
	sn.vm_state_size = be64_at(p + 4);
	sn.disk_size = be64_at(p + 12);
	sn.icount = (s64)be64_at(p + 20);
	sn.id_len = get_unaligned_be16(p + 28) % 160;
	sn.name_len = get_unaligned_be16(p + 30) % 1100;
	sn.extra_data_size = get_unaligned_be16(p + 32) % 1100;
	p += 34;
	n -= 34;
	if ((size_t)sn.id_len + sn.name_len > n)
		return;
	sn.id = (const char *)p;
	sn.name = (const char *)p + sn.id_len;
	if (sel & 2) {
		if ((size_t)sn.id_len + sn.name_len + sn.extra_data_size > n)
			return;
		sn.extra_data = p + sn.id_len + sn.name_len;
	}

	esize = qcow2_snapshot_entry_size(&hdr, &sn);
	out = malloc(esize);
	if (!out)
		abort();
	err = qcow2_snapshot_serialize(&hdr, &sn, out, esize, &w);
	want = !sn.id_len || sn.id_len > QCOW2_MAX_SNAPSHOT_ID_LEN ||
	       sn.name_len > QCOW2_MAX_SNAPSHOT_NAME_LEN ||
	       sn.extra_data_size > QCOW2_MAX_SNAPSHOT_EXTRA ? -EINVAL : 0;
	FUZZ_CHECK(err == want, "serialize %d, expected %d", err, want);
	if (err)
		goto out;
	fuzz_diag_poison(&diag);
	err = qcow2_snapshot_parse(&hdr, out, esize, file_size, &back, &used,
				   &diag);
	fuzz_diag_check(err, &diag);
	want = memchr(p, 0, sn.id_len + sn.name_len) ||
	       sn.disk_size > QCOW2_MAX_VIRTUAL_SIZE ? -EINVAL : 0;
	FUZZ_CHECK(err == want, "built entry parses %d, expected %d (%s)", err, want,
		   err ? diag.msg : "");
	if (!err) {
		check_entry(&back, out, esize, used);
		check_round_trip(&sn);
		check_round_trip(&back);
	}
out:
	free(out);
}

FUZZ_TARGET
{
	struct qcow2_snapshot sn;
	struct qcow2_diag diag, bad;
	size_t len, off = 0, used, end = 0;
	u32 version, cb, nb = 0;
	int err = 0;
	u8 sel, *buf;

	if (size < 10)
		return 0;
	version = data[0] & 1 ? 3 : 2;
	cb = 9 + (data[0] >> 1) % 13;
	file_size = be64_at(data + 1);
	sel = data[9];
	/* Top bit set: a small file, so tables can run past its end. */
	if (file_size >> 63)
		file_size = (2ULL << cb) + (file_size & 0xffff);
	if (file_size < 2ULL << cb)
		file_size = 2ULL << cb;
	err = fuzz_make_header(&hdr, version, cb, 0, 4, file_size);
	FUZZ_CHECK(!err, "minimal header refused: %d", err);

	len = size - 10;
	buf = fuzz_dup(data + 10, len);
	if (sel & 1) {
		check_built(buf, len, sel);
		goto out;
	}

	while (off < len && nb < QCOW2_MAX_SNAPSHOTS) {
		fuzz_diag_poison(&diag);
		err = qcow2_snapshot_parse(&hdr, buf + off, len - off, file_size, &sn,
					   &used, &diag);
		fuzz_diag_check(err, &diag);
		nb++;
		if (err) {
			FUZZ_CHECK(err == -EINVAL, "entry parse: %d", err);
			bad = diag;
			check_table(buf, len, nb, 0, &bad, err);
			break;
		}
		check_entry(&sn, buf + off, len - off, used);
		check_round_trip(&sn);
		end = off + sizeof(struct qcow2_snapshot_disk) + sn.extra_data_size +
		      sn.id_len + sn.name_len;
		off += used;
	}
	if (nb && !err)
		check_table(buf, len, nb, end, NULL, 0);
out:
	free(buf);
	return 0;
}
