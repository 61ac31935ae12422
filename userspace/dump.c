// SPDX-License-Identifier: GPL-2.0
/*
 * qcowctl dump: everything an image's metadata says, table by table, and a
 * map of what every host cluster of the file holds.
 *
 * Sections, in file-format terms (field names as in qcow2_format.h):
 *   header       every field of the fixed header, raw
 *   extensions   backing file and format, feature names, bitmaps, ...
 *   l1-table     the active L1 table's allocated entries
 *   l2-tables    (--l2) every allocated L2 table of the active state and
 *                of each snapshot, with its non-empty entries decoded
 *   refcount-table  each refcount block: where, which clusters it covers,
 *                how many are in use, the highest refcount
 *   snapshots    the snapshot table
 *   bitmaps      the bitmap directory
 *   clusters     runs of host clusters holding the same kind of thing:
 *                header, L1/L2 tables (with the guest range an L2 table
 *                maps), refcount table and blocks, snapshot table, bitmap
 *                structures, data (with its guest offset), or nothing --
 *                free, or "leaked" when a refcount claims it anyway; with
 *                the stored refcount and the references found
 *
 * The cluster map comes from the walk `qcowctl check` runs (walk.c), so
 * the refcounts it shows are the ones check compares; entries are decoded
 * by the module's format core.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "walk.h"

struct qc_dump {
	struct qc_walk w;
	struct json_writer jw;
	bool json;
	bool l2;
};

/* --- header and extensions ----------------------------------------------- */

struct qc_hfield {
	const char *name;
	u64 value;
	bool hex;
};

static void dump_header(struct qc_dump *d)
{
	const struct qcow2_header *h = d->w.h;
	const struct qc_hfield f[] = {
		{ "magic", QCOW2_MAGIC, true },
		{ "version", h->version, false },
		{ "backing_file_offset", h->backing_file_offset, true },
		{ "backing_file_size", h->backing_file_size, false },
		{ "cluster_bits", h->cluster_bits, false },
		{ "size", h->size, false },
		{ "crypt_method", h->crypt_method, false },
		{ "l1_size", h->l1_size, false },
		{ "l1_table_offset", h->l1_table_offset, true },
		{ "refcount_table_offset", h->refcount_table_offset, true },
		{ "refcount_table_clusters", h->refcount_table_clusters, false },
		{ "nb_snapshots", h->nb_snapshots, false },
		{ "snapshots_offset", h->snapshots_offset, true },
		{ "incompatible_features", h->incompatible_features, true },
		{ "compatible_features", h->compatible_features, true },
		{ "autoclear_features", h->autoclear_features, true },
		{ "refcount_order", h->refcount_order, false },
		{ "header_length", h->header_length, false },
		{ "compression_type", h->compression_type, false },
	};
	unsigned int i;

	if (d->json) {
		json_object_begin(&d->jw, "header");
		for (i = 0; i < ARRAY_SIZE(f); i++)
			json_u64(&d->jw, f[i].name, f[i].value);
		json_u64(&d->jw, "cluster_size", h->cluster_size);
		json_u64(&d->jw, "refcount_bits", 1ULL << h->refcount_order);
		json_bool(&d->jw, "extended_l2", h->extended_l2);
		json_u64(&d->jw, "l2_entries", 1ULL << h->l2_bits);
		json_u64(&d->jw, "file_size", d->w.file_size);
		json_object_end(&d->jw);
		return;
	}
	printf("Header\n");
	for (i = 0; i < ARRAY_SIZE(f); i++) {
		if (f[i].hex)
			printf("  %-26s0x%llx\n", f[i].name, f[i].value);
		else
			printf("  %-26s%llu\n", f[i].name, f[i].value);
	}
	printf("  (cluster size %llu, %u-bit refcounts, file %llu bytes,\n",
	       h->cluster_size, 1U << h->refcount_order, d->w.file_size);
	printf("   %llu %s L2 entries per table)\n", 1ULL << h->l2_bits,
	       h->extended_l2 ? "extended" : "standard");
}

static const char *const feature_types[] = {
	"incompatible", "compatible", "autoclear",
};

static void dump_extensions(struct qc_dump *d)
{
	const struct qcow2_extensions *ext = &d->w.qi->img.ext;
	u32 i;

	if (d->json) {
		json_object_begin(&d->jw, "extensions");
		if (ext->has_backing_file)
			json_string(&d->jw, "backing_file", ext->backing_file);
		if (ext->has_backing_format)
			json_string(&d->jw, "backing_format", ext->backing_format);
		if (ext->has_data_file)
			json_string(&d->jw, "data_file", ext->data_file);
		if (ext->has_bitmaps) {
			json_u64(&d->jw, "nb_bitmaps", ext->nb_bitmaps);
			json_u64(&d->jw, "bitmap_directory_offset",
				 ext->bitmap_directory_offset);
			json_u64(&d->jw, "bitmap_directory_size",
				 ext->bitmap_directory_size);
		}
		json_array_begin(&d->jw, "feature_names");
		for (i = 0; i < ext->nr_feature_names; i++) {
			const struct qcow2_feature_name *f = &ext->feature_names[i];

			json_object_begin(&d->jw, NULL);
			json_string(&d->jw, "type", f->type < 3 ?
				    feature_types[f->type] : "unknown");
			json_u64(&d->jw, "bit", f->bit);
			json_string(&d->jw, "name", f->name);
			json_object_end(&d->jw);
		}
		json_array_end(&d->jw);
		json_u64(&d->jw, "unknown", ext->nr_unknown);
		json_u64(&d->jw, "end", ext->ext_end);
		json_object_end(&d->jw);
		return;
	}
	printf("\nHeader extensions (end at 0x%x)\n", ext->ext_end);
	if (ext->has_backing_file) {
		printf("  backing file              ");
		qc_put_text(stdout, ext->backing_file, strlen(ext->backing_file));
		putchar('\n');
	}
	if (ext->has_backing_format) {
		printf("  backing format            ");
		qc_put_text(stdout, ext->backing_format,
			    strlen(ext->backing_format));
		putchar('\n');
	}
	if (ext->has_data_file) {
		printf("  data file                 ");
		qc_put_text(stdout, ext->data_file, strlen(ext->data_file));
		putchar('\n');
	}
	if (ext->has_bitmaps)
		printf("  bitmaps                   %u, directory at 0x%llx (%llu bytes)\n",
		       ext->nb_bitmaps, ext->bitmap_directory_offset,
		       ext->bitmap_directory_size);
	for (i = 0; i < ext->nr_feature_names; i++) {
		const struct qcow2_feature_name *f = &ext->feature_names[i];

		printf("  feature name              %s bit %u: ", f->type < 3 ?
		       feature_types[f->type] : "unknown", f->bit);
		qc_put_text(stdout, f->name, strlen(f->name));
		putchar('\n');
	}
	if (ext->nr_unknown)
		printf("  unknown extensions        %u\n", ext->nr_unknown);
}

/* --- L1 and L2 tables ----------------------------------------------------- */

static const char *qc_cluster_type_name(enum qcow2_cluster_type t)
{
	switch (t) {
	case QCOW2_CLUSTER_UNALLOCATED:
		return "unallocated";
	case QCOW2_CLUSTER_ZERO_PLAIN:
		return "zero";
	case QCOW2_CLUSTER_ZERO_ALLOC:
		return "zero-allocated";
	case QCOW2_CLUSTER_NORMAL:
		return "normal";
	case QCOW2_CLUSTER_COMPRESSED:
		return "compressed";
	}
	return "?";
}

static void dump_l2_table(struct qc_dump *d, u64 l2, u64 l1i)
{
	const struct qcow2_header *h = d->w.h;
	u64 word, bitmap, guest;
	struct qcow2_l2e e;
	u32 j, bad;

	if (qc_pread_zero(d->w.qi->fd, d->w.l2buf, h->cluster_size, l2)) {
		memset(d->w.l2buf, 0, h->cluster_size);
		if (!d->json)
			printf("      (unreadable)\n");
	}
	for (j = 0; j < 1U << h->l2_bits; j++) {
		qcow2_l2_get(h, d->w.l2buf, j, &word, &bitmap);
		if (!word && !bitmap)
			continue;
		bad = qcow2_l2e_inspect(h, word, bitmap, d->w.file_size, &e);
		guest = qcow2_guest_offset(h, l1i, j);
		if (d->json) {
			json_object_begin(&d->jw, NULL);
			json_u64(&d->jw, "index", j);
			json_u64(&d->jw, "guest_offset", guest);
			json_u64(&d->jw, "entry", word);
			if (h->extended_l2)
				json_u64(&d->jw, "bitmap", bitmap);
			json_string(&d->jw, "type", qc_cluster_type_name(e.type));
			if (e.type == QCOW2_CLUSTER_COMPRESSED) {
				json_u64(&d->jw, "compressed_offset", e.comp_offset);
				json_u64(&d->jw, "compressed_length", e.comp_len);
			} else if (e.host_offset) {
				json_u64(&d->jw, "host_offset", e.host_offset);
			}
			json_bool(&d->jw, "copied", e.copied);
			json_u64(&d->jw, "problems", bad);
			json_object_end(&d->jw);
			continue;
		}
		printf("      %-6u 0x%-14llx 0x%016llx", j, guest, word);
		if (h->extended_l2)
			printf(" 0x%016llx", bitmap);
		printf(" %-15s", qc_cluster_type_name(e.type));
		if (e.type == QCOW2_CLUSTER_COMPRESSED)
			printf(" 0x%llx+%llu", e.comp_offset, e.comp_len);
		else if (e.host_offset)
			printf(" 0x%llx", e.host_offset);
		if (e.copied)
			printf(" copied");
		if (bad)
			printf(" (invalid: 0x%x)", bad);
		putchar('\n');
	}
}

/* One L1 table; with @d->l2, the L2 tables it names too. */
static void dump_l1(struct qc_dump *d, const char *key, u64 offset,
		    u32 size, const char *title)
{
	const struct qcow2_header *h = d->w.h;
	u64 *l1 = NULL, l2, span = 1ULL << (h->cluster_bits + h->l2_bits);
	u32 i, bad;

	if (size && qc_read_l1(&d->w, offset, size, &l1))
		l1 = NULL;
	if (d->json) {
		json_object_begin(&d->jw, key);
		json_u64(&d->jw, "offset", offset);
		json_u64(&d->jw, "size", size);
		json_array_begin(&d->jw, "entries");
	} else {
		printf("\n%s (0x%llx, %u entries)\n", title, offset, size);
	}
	for (i = 0; l1 && i < size; i++) {
		if (!l1[i])
			continue;
		bad = qcow2_l1e_inspect(h, l1[i], d->w.file_size, &l2);
		if (d->json) {
			json_object_begin(&d->jw, NULL);
			json_u64(&d->jw, "index", i);
			json_u64(&d->jw, "entry", l1[i]);
			json_u64(&d->jw, "l2_offset", l2);
			json_bool(&d->jw, "copied", l1[i] & QCOW2_OFLAG_COPIED);
			json_u64(&d->jw, "guest_offset", qcow2_guest_offset(h, i, 0));
			json_u64(&d->jw, "problems", bad);
			if (d->l2 && l2) {
				json_array_begin(&d->jw, "l2_entries");
				dump_l2_table(d, l2, i);
				json_array_end(&d->jw);
			}
			json_object_end(&d->jw);
			continue;
		}
		printf("  %-6u 0x%016llx  L2 table 0x%llx%s, guest 0x%llx-0x%llx%s\n",
		       i, l1[i], l2, l1[i] & QCOW2_OFLAG_COPIED ? " (copied)" : "",
		       qcow2_guest_offset(h, i, 0),
		       qcow2_guest_offset(h, i, 0) + span - 1,
		       bad ? " (invalid)" : "");
		if (d->l2 && l2)
			dump_l2_table(d, l2, i);
	}
	if (d->json) {
		json_array_end(&d->jw);
		json_object_end(&d->jw);
	}
	free(l1);
}

/* --- refcounts ------------------------------------------------------------ */

static void dump_refcounts(struct qc_dump *d)
{
	const struct qcow2_header *h = d->w.h;
	struct qc_refs *r = &d->w.refs;
	u64 i, k, per = 1ULL << h->refblock_bits, off, rc, used, top;
	u32 bad;

	if (d->json) {
		json_object_begin(&d->jw, "refcount_table");
		json_u64(&d->jw, "offset", h->refcount_table_offset);
		json_u64(&d->jw, "clusters", h->refcount_table_clusters);
		json_u64(&d->jw, "entries", r->entries);
		json_u64(&d->jw, "clusters_per_block", per);
		json_array_begin(&d->jw, "blocks");
	} else {
		printf("\nRefcount table (0x%llx, %u clusters, %llu entries)\n",
		       h->refcount_table_offset, h->refcount_table_clusters,
		       r->entries);
	}
	for (i = 0; i < r->entries; i++) {
		if (!r->table[i])
			continue;
		bad = qcow2_reftable_entry_inspect(h, r->table[i],
						   d->w.file_size, &off);
		used = 0;
		top = 0;
		for (k = i * per; !(bad & QCOW2_BAD_UNALIGNED) && k < (i + 1) * per;
		     k++) {
			if (qc_refs_get(r, k, &rc))
				break;
			used += !!rc;
			top = max(top, rc);
		}
		if (d->json) {
			json_object_begin(&d->jw, NULL);
			json_u64(&d->jw, "index", i);
			json_u64(&d->jw, "entry", r->table[i]);
			json_u64(&d->jw, "offset", off);
			json_u64(&d->jw, "first_cluster", i * per);
			json_u64(&d->jw, "clusters_in_use", used);
			json_u64(&d->jw, "max_refcount", top);
			json_u64(&d->jw, "problems", bad);
			json_object_end(&d->jw);
			continue;
		}
		printf("  %-6llu block 0x%llx: clusters %llu-%llu, %llu in use, ",
		       i, off, i * per, (i + 1) * per - 1, used);
		printf("highest refcount %llu%s\n", top, bad ? " (invalid)" : "");
	}
	if (d->json) {
		json_array_end(&d->jw);
		json_object_end(&d->jw);
	}
}

/* --- snapshots and bitmaps ----------------------------------------------- */

static void dump_snapshots(struct qc_dump *d)
{
	const struct qc_snapshots *sns = &d->w.sns;
	char key[32], title[96];
	unsigned int i;

	if (d->json) {
		json_object_begin(&d->jw, "snapshot_table");
		json_u64(&d->jw, "offset", d->w.h->snapshots_offset);
		json_u64(&d->jw, "length", d->w.snap_table_len);
		json_array_begin(&d->jw, "snapshots");
	} else {
		printf("\nSnapshot table (0x%llx, %u snapshots, %llu bytes)\n",
		       d->w.h->snapshots_offset, sns->nr, d->w.snap_table_len);
	}
	for (i = 0; i < sns->nr; i++) {
		const struct qcow2_snapshot *sn = &sns->sn[i];

		if (d->json) {
			json_object_begin(&d->jw, NULL);
			json_string_n(&d->jw, "id", sn->id, sn->id_len);
			json_string_n(&d->jw, "name", sn->name, sn->name_len);
			json_u64(&d->jw, "date_sec", sn->date_sec);
			json_u64(&d->jw, "date_nsec", sn->date_nsec);
			json_u64(&d->jw, "vm_clock_nsec", sn->vm_clock_nsec);
			json_u64(&d->jw, "vm_state_size", sn->vm_state_size);
			if (sn->has_disk_size)
				json_u64(&d->jw, "disk_size", sn->disk_size);
			if (sn->icount != -1)
				json_s64(&d->jw, "icount", sn->icount);
			json_u64(&d->jw, "extra_data_size", sn->extra_data_size);
			if (d->l2) {
				dump_l1(d, "l1_table", sn->l1_table_offset,
					sn->l1_size, NULL);
			} else {
				json_u64(&d->jw, "l1_table_offset",
					 sn->l1_table_offset);
				json_u64(&d->jw, "l1_size", sn->l1_size);
			}
			json_object_end(&d->jw);
			continue;
		}
		printf("  id ");
		qc_put_text(stdout, sn->id, sn->id_len);
		printf(", name ");
		qc_put_text(stdout, sn->name, sn->name_len);
		printf(": L1 table 0x%llx (%u entries), date %u.%09u,",
		       sn->l1_table_offset, sn->l1_size, sn->date_sec,
		       sn->date_nsec);
		printf(" vm clock %llu ns, vm state %llu bytes",
		       sn->vm_clock_nsec, sn->vm_state_size);
		if (sn->has_disk_size)
			printf(", disk size %llu", sn->disk_size);
		if (sn->icount != -1)
			printf(", icount %lld", sn->icount);
		printf(", %u bytes of extra data\n", sn->extra_data_size);
	}
	if (d->json) {
		json_array_end(&d->jw);
		json_object_end(&d->jw);
	}
	for (i = 0; !d->json && d->l2 && i < sns->nr; i++) {
		snprintf(key, sizeof(key), "%u", i);
		snprintf(title, sizeof(title), "L1 table of snapshot %u (%.*s)",
			 i, (int)min_t(u16, sns->sn[i].id_len, 32),
			 sns->sn[i].id);
		dump_l1(d, key, sns->sn[i].l1_table_offset, sns->sn[i].l1_size,
			title);
	}
}

static void dump_bitmaps(struct qc_dump *d)
{
	const struct qcow2_extensions *ext = &d->w.qi->img.ext;
	const struct qcow2_header *h = d->w.h;
	struct qcow2_bitmap bm;
	size_t pos = 0, used;
	void *dir;
	u32 b;

	if (!ext->has_bitmaps ||
	    !(h->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
		return;
	dir = malloc(ext->bitmap_directory_size);
	if (!dir || qc_pread_zero(d->w.qi->fd, dir, ext->bitmap_directory_size,
				  ext->bitmap_directory_offset)) {
		free(dir);
		return;
	}
	if (d->json)
		json_array_begin(&d->jw, "bitmaps");
	else
		printf("\nBitmaps (directory at 0x%llx)\n",
		       ext->bitmap_directory_offset);
	for (b = 0; b < ext->nb_bitmaps; b++) {
		if (qcow2_bitmap_dir_entry_parse(h, (u8 *)dir + pos,
						 ext->bitmap_directory_size - pos,
						 &bm, &used, NULL))
			break;
		pos += used;
		if (d->json) {
			json_object_begin(&d->jw, NULL);
			json_string_n(&d->jw, "name", bm.name, bm.name_len);
			json_u64(&d->jw, "table_offset", bm.table_offset);
			json_u64(&d->jw, "table_size", bm.table_size);
			json_u64(&d->jw, "flags", bm.flags);
			json_u64(&d->jw, "type", bm.type);
			json_u64(&d->jw, "granularity_bits", bm.granularity_bits);
			json_u64(&d->jw, "extra_data_size", bm.extra_data_size);
			json_object_end(&d->jw);
			continue;
		}
		printf("  %u ", b);
		qc_put_text(stdout, bm.name, bm.name_len);
		printf(": table 0x%llx (%u entries), granularity %llu, flags 0x%x%s%s\n",
		       bm.table_offset, bm.table_size, 1ULL << bm.granularity_bits,
		       bm.flags, bm.flags & QCOW2_BITMAP_IN_USE ? " in-use" : "",
		       bm.flags & QCOW2_BITMAP_AUTO ? " auto" : "");
	}
	if (d->json)
		json_array_end(&d->jw);
	free(dir);
}

/* --- the host cluster map ------------------------------------------------- */

/* What one cluster is, as the key of a run. */
struct qc_run {
	u64 first;		/* cluster index */
	u64 count;
	struct qc_owner o;
	u64 refcount;		/* stored */
	u64 refs;		/* references found */
	bool unreadable;
};

/* Does cluster @k continue run @r? */
static bool qc_run_continues(const struct qc_dump *d, const struct qc_run *r,
			     const struct qc_run *k)
{
	u64 step;

	if (r->o.kind != k->o.kind || r->o.snap != k->o.snap ||
	    r->o.shared != k->o.shared || r->o.overlap != k->o.overlap ||
	    r->refcount != k->refcount || r->refs != k->refs ||
	    r->unreadable != k->unreadable)
		return false;
	switch (r->o.kind) {
	case QC_OWN_DATA:
		step = d->w.h->cluster_size;
		break;
	case QC_OWN_REFBLOCK:
	case QC_OWN_BITMAP_DATA:
		step = 1;
		break;
	case QC_OWN_L2:
	case QC_OWN_COMPRESSED:
		return false;	/* one line each */
	default:
		return true;	/* tables spanning clusters */
	}
	return k->o.where == r->o.where + r->count * step;
}

static const char *qc_run_kind(const struct qc_run *r)
{
	if (r->o.kind != QC_OWN_FREE)
		return qc_own_name(r->o.kind);
	if (r->unreadable)
		return "unknown";
	return r->refcount ? "leaked" : "free";
}

static void dump_run(struct qc_dump *d, const struct qc_run *r)
{
	u32 cb = d->w.h->cluster_bits;
	char what[200];

	if (d->json) {
		json_object_begin(&d->jw, NULL);
		json_u64(&d->jw, "offset", r->first << cb);
		json_u64(&d->jw, "length", r->count << cb);
		json_u64(&d->jw, "first_cluster", r->first);
		json_u64(&d->jw, "clusters", r->count);
		json_string(&d->jw, "type", qc_run_kind(r));
		if (r->o.kind == QC_OWN_L1 || r->o.kind == QC_OWN_L2 ||
		    r->o.kind == QC_OWN_DATA || r->o.kind == QC_OWN_COMPRESSED)
			json_s64(&d->jw, "snapshot", (s64)r->o.snap - 1);
		if (r->o.kind == QC_OWN_L2 || r->o.kind == QC_OWN_DATA ||
		    r->o.kind == QC_OWN_COMPRESSED)
			json_u64(&d->jw, "guest_offset", r->o.where);
		if (r->o.kind == QC_OWN_REFBLOCK)
			json_u64(&d->jw, "refcount_table_index", r->o.where);
		if (r->o.kind == QC_OWN_BITMAP_TABLE ||
		    r->o.kind == QC_OWN_BITMAP_DATA)
			json_u64(&d->jw, "bitmap", r->o.snap);
		if (r->unreadable)
			json_null(&d->jw, "refcount");
		else
			json_u64(&d->jw, "refcount", r->refcount);
		json_u64(&d->jw, "references", r->refs);
		json_bool(&d->jw, "shared", r->o.shared);
		json_bool(&d->jw, "overlap", r->o.overlap);
		json_object_end(&d->jw);
		return;
	}
	if (r->o.kind == QC_OWN_FREE)
		snprintf(what, sizeof(what), "%s", qc_run_kind(r));
	else
		qc_owner_describe(&d->w, &r->o, what, sizeof(what));
	if (r->o.kind == QC_OWN_DATA && r->count > 1)
		snprintf(what + strlen(what), sizeof(what) - strlen(what),
			 "-0x%llx", r->o.where + (r->count << cb) - 1);
	printf("  0x%-12llx 0x%-12llx %-8llu %s", r->first << cb,
	       ((r->first + r->count) << cb) - 1, r->count, what);
	if (r->unreadable)
		printf(", refcount unreadable");
	else if (r->o.kind == QC_OWN_FREE)
		printf(r->refcount ? ", refcount %llu" : "", r->refcount);
	else if (r->refcount != 1 || r->refs != 1)
		printf(", refcount %llu, %llu references", r->refcount, r->refs);
	if (r->o.overlap)
		printf(", also %s (overlap)", qc_own_name(r->o.other));
	putchar('\n');
}

static void dump_clusters(struct qc_dump *d)
{
	struct qc_walk *w = &d->w;
	struct qc_run r = {}, k = {};
	u64 i;

	if (d->json) {
		json_array_begin(&d->jw, "clusters");
	} else {
		printf("\nHost clusters of %llu bytes: first byte, last byte, count, contents\n",
		       w->h->cluster_size);
	}
	for (i = 0; i < w->nb_clusters; i++) {
		memset(&k, 0, sizeof(k));
		k.first = i;
		k.count = 1;
		k.o = w->owners[i];
		k.refs = qc_walk_expected(w, i);
		k.unreadable = qc_refs_get(&w->refs, i, &k.refcount) != 0;
		if (r.count && qc_run_continues(d, &r, &k)) {
			r.count++;
			continue;
		}
		if (r.count)
			dump_run(d, &r);
		r = k;
	}
	if (r.count)
		dump_run(d, &r);
	if (d->json)
		json_array_end(&d->jw);
}

int cmd_dump(const struct qc_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "l2", no_argument, NULL, 'l' },
		{ "force-share", no_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct qc_dump d = {};
	struct qc_image *qi;
	bool force_share = false;
	int c, ret, status = QC_EXIT_FAIL;

	optind = 0;
	while ((c = getopt_long(argc, argv, "jlUh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			d.json = true;
			break;
		case 'l':
			d.l2 = true;
			break;
		case 'U':
			force_share = true;
			break;
		case 'h':
			qc_cmd_usage(cmd, stdout);
			return QC_EXIT_OK;
		default:
			return qc_usage_error(cmd, NULL);
		}
	}
	if (argc - optind != 1)
		return qc_usage_error(cmd, argc == optind ? "missing IMAGE" :
				      "too many arguments");

	qi = qc_inspect_open(argv[optind], false, force_share);
	if (!qi)
		return QC_EXIT_FAIL;
	ret = qc_walk_init(&d.w, qi, true);
	if (ret)
		goto out;
	ret = qc_walk_run(&d.w);
	if (ret) {
		qc_err("%s: the metadata walk could not complete: %s", qi->path,
		       strerror(-ret));
		goto out;
	}
	if (!d.w.owners) {
		qc_err("%s: too many clusters to map", qi->path);
		goto out;
	}

	if (d.json) {
		json_init(&d.jw, stdout);
		json_object_begin(&d.jw, NULL);
		json_string(&d.jw, "filename", qi->path);
	} else {
		printf("Image ");
		qc_put_text(stdout, qi->path, strlen(qi->path));
		printf("\n\n");
	}
	dump_header(&d);
	dump_extensions(&d);
	dump_l1(&d, "l1_table", d.w.h->l1_table_offset, d.w.h->l1_size,
		"Active L1 table");
	dump_refcounts(&d);
	dump_snapshots(&d);
	dump_bitmaps(&d);
	dump_clusters(&d);
	if (d.json) {
		json_object_begin(&d.jw, "check");
		json_u64(&d.jw, "corruptions", d.w.corruptions);
		json_u64(&d.jw, "leaks", d.w.leaks);
		json_u64(&d.jw, "check-errors", d.w.check_errors);
		json_object_end(&d.jw);
		json_object_end(&d.jw);
	} else if (d.w.corruptions || d.w.leaks || d.w.check_errors) {
		printf("\n%llu errors, %llu leaked clusters, %llu unreadable refcounts",
		       d.w.corruptions, d.w.leaks, d.w.check_errors);
		printf(" ('qcowctl check' tells which)\n");
	}
	status = QC_EXIT_OK;
	if (fflush(stdout) || ferror(stdout)) {
		qc_err("write error on standard output");
		status = QC_EXIT_FAIL;
	}
out:
	qc_walk_free(&d.w);
	qc_image_close(qi);
	return status;
}
