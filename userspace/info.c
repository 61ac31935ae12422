// SPDX-License-Identifier: GPL-2.0
/*
 * qcowctl info: what the header, the header extensions and the snapshot
 * table of an image say, decoded by the format core the module runs.
 *
 * The JSON member names follow `qemu-img info --output=json` where the two
 * report the same thing (virtual-size, cluster-size, compat, refcount-bits,
 * backing-filename, snapshots[].vm-clock-nsec, ...), flattened: qcowctl
 * only knows qcow2, so there is no "format-specific" level.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "qcowctl.h"

#define NSEC_PER_SEC	1000000000ULL

static const char * const feature_type_names[] = {
	"incompatible", "compatible", "autoclear",
};

static u64 feature_mask(const struct qcow2_header *h, unsigned int type)
{
	switch (type) {
	case 0:
		return h->incompatible_features;
	case 1:
		return h->compatible_features;
	default:
		return h->autoclear_features;
	}
}

/* The spec's name for a feature bit, else the image's feature table's. */
static const char *feature_bit_name(const struct qcow2_image *img,
				    unsigned int type, unsigned int bit)
{
	const char *name = qcow2_known_feature_name(type, bit);

	if (!name)
		name = qcow2_feature_name(&img->ext, type, bit);
	return name;
}

static const char *compat_str(const struct qcow2_header *h)
{
	return h->version == 2 ? "0.10" : "1.1";
}

/* --- text ------------------------------------------------------------- */

static void print_yes_no(const char *what, bool v)
{
	printf("%s: %s\n", what, v ? "yes" : "no");
}

static void print_features(const struct qcow2_image *img, unsigned int type)
{
	u64 mask = feature_mask(&img->hdr, type);
	unsigned int bit;
	const char *sep = "";

	printf("%s features: ", feature_type_names[type]);
	if (!mask)
		fputs("none", stdout);
	for (bit = 0; bit < 64; bit++) {
		const char *name;

		if (!(mask & BIT_ULL(bit)))
			continue;
		name = feature_bit_name(img, type, bit);
		if (name)
			printf("%s%s (bit %u)", sep, name, bit);
		else
			printf("%sunknown (bit %u)", sep, bit);
		sep = ", ";
	}
	putchar('\n');
}

static void print_clock(char *buf, size_t len, u64 nsec)
{
	u64 secs = nsec / NSEC_PER_SEC;

	snprintf(buf, len, "%02llu:%02u:%02u.%03u", secs / 3600,
		 (unsigned int)(secs / 60 % 60), (unsigned int)(secs % 60),
		 (unsigned int)(nsec / 1000000 % 1000));
}

/* Columns as `qemu-img snapshot -l`, plus the disk size each snapshot had. */
static void print_snapshots(const struct qc_snapshots *sns)
{
	unsigned int i;

	printf("Snapshot list:\n");
	printf("%-10s%-17s%8s%20s%13s%11s%12s\n", "ID", "TAG", "VM SIZE",
	       "DATE", "VM CLOCK", "ICOUNT", "DISK SIZE");
	for (i = 0; i < sns->nr; i++) {
		const struct qcow2_snapshot *sn = &sns->sn[i];
		char vmsize[32], date[32], clock[32], icount[24], disk[32];
		time_t t = sn->date_sec;
		struct tm tm;
		int pad;

		qc_size_str(vmsize, sizeof(vmsize), sn->vm_state_size);
		if (localtime_r(&t, &tm))
			strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
		else
			snprintf(date, sizeof(date), "%u", sn->date_sec);
		print_clock(clock, sizeof(clock), sn->vm_clock_nsec);
		icount[0] = '\0';
		if (sn->icount != -1)
			snprintf(icount, sizeof(icount), "%lld", sn->icount);
		disk[0] = '\0';
		if (sn->has_disk_size)
			qc_size_str(disk, sizeof(disk), sn->disk_size);

		qc_put_text(stdout, sn->id, sn->id_len);
		pad = 10 - (int)sn->id_len;
		printf("%*s", pad > 1 ? pad : 1, "");
		qc_put_text(stdout, sn->name, sn->name_len);
		pad = 17 - (int)sn->name_len;
		printf("%*s", pad > 1 ? pad : 1, "");
		printf("%8s%20s%13s%11s%12s\n", vmsize, date, clock, icount,
		       disk);
	}
}

static void info_text(const struct qc_image *qi, const struct qc_snapshots *sns)
{
	const struct qcow2_header *h = &qi->img.hdr;
	const struct qcow2_extensions *ext = &qi->img.ext;
	const char *name;
	char sz[32];
	unsigned int type;

	printf("image: ");
	qc_put_text(stdout, qi->path, strlen(qi->path));
	putchar('\n');
	printf("file format: qcow2 version %u (compat %s)\n", h->version,
	       compat_str(h));
	qc_size_str(sz, sizeof(sz), h->size);
	printf("virtual size: %s (%llu bytes)\n", sz, h->size);
	qc_size_str(sz, sizeof(sz), qi->file_size);
	printf("file size: %s (%llu bytes)\n", sz, qi->file_size);
	printf("cluster size: %llu (%u bits)\n", h->cluster_size,
	       h->cluster_bits);
	printf("header length: %u\n", h->header_length);
	printf("L1 table: offset 0x%llx, %u entries\n", h->l1_table_offset,
	       h->l1_size);
	printf("refcount table: offset 0x%llx, %u cluster%s\n",
	       h->refcount_table_offset, h->refcount_table_clusters,
	       h->refcount_table_clusters == 1 ? "" : "s");
	printf("refcount bits: %u\n", 1U << h->refcount_order);
	name = qc_compression_name(h->compression_type);
	if (name)
		printf("compression type: %s\n", name);
	else
		printf("compression type: unknown (%u)\n", h->compression_type);
	name = qc_crypt_name(h->crypt_method);
	if (name)
		printf("encryption: %s\n", name);
	else
		printf("encryption: unknown (%u)\n", h->crypt_method);
	print_yes_no("dirty", h->incompatible_features & QCOW2_INCOMPAT_DIRTY);
	print_yes_no("corrupt",
		     h->incompatible_features & QCOW2_INCOMPAT_CORRUPT);
	print_yes_no("lazy refcounts",
		     h->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS);
	print_yes_no("extended L2", h->extended_l2);
	for (type = 0; type < ARRAY_SIZE(feature_type_names); type++)
		print_features(&qi->img, type);

	if (ext->has_backing_file) {
		printf("backing file: ");
		qc_put_text(stdout, ext->backing_file, strlen(ext->backing_file));
		putchar('\n');
	}
	if (ext->has_backing_format) {
		printf("backing file format: ");
		qc_put_text(stdout, ext->backing_format,
			    strlen(ext->backing_format));
		putchar('\n');
	}
	if (ext->has_data_file) {
		printf("data file: ");
		qc_put_text(stdout, ext->data_file, strlen(ext->data_file));
		putchar('\n');
	}
	if (h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE)
		print_yes_no("data file raw", h->autoclear_features &
					      QCOW2_AUTOCLEAR_DATA_FILE_RAW);
	if (ext->has_bitmaps)
		printf("bitmaps: %u (directory at 0x%llx, %llu bytes)\n",
		       ext->nb_bitmaps, ext->bitmap_directory_offset,
		       ext->bitmap_directory_size);
	if (ext->has_crypto)
		printf("crypto header: offset 0x%llx, %llu bytes\n",
		       ext->crypto_offset, ext->crypto_length);
	printf("feature name table: %u entries\n", ext->nr_feature_names);
	if (ext->nr_unknown)
		printf("unknown header extensions: %u\n", ext->nr_unknown);
	printf("snapshots: %u\n", h->nb_snapshots);
	if (sns->nr)
		print_snapshots(sns);
}

/* --- JSON ------------------------------------------------------------- */

static void json_features(struct json_writer *w, const struct qcow2_image *img,
			  unsigned int type)
{
	u64 mask = feature_mask(&img->hdr, type);
	char key[32];
	unsigned int bit;

	snprintf(key, sizeof(key), "%s-features", feature_type_names[type]);
	json_array_begin(w, key);
	for (bit = 0; bit < 64; bit++) {
		if (!(mask & BIT_ULL(bit)))
			continue;
		json_object_begin(w, NULL);
		json_u64(w, "bit", bit);
		json_string(w, "name", feature_bit_name(img, type, bit));
		json_object_end(w);
	}
	json_array_end(w);
}

static void json_snapshot(struct json_writer *w, const struct qcow2_snapshot *sn)
{
	json_object_begin(w, NULL);
	json_string_n(w, "id", sn->id, sn->id_len);
	json_string_n(w, "name", sn->name, sn->name_len);
	json_u64(w, "vm-state-size", sn->vm_state_size);
	json_u64(w, "date-sec", sn->date_sec);
	json_u64(w, "date-nsec", sn->date_nsec);
	json_u64(w, "vm-clock-sec", sn->vm_clock_nsec / NSEC_PER_SEC);
	json_u64(w, "vm-clock-nsec", sn->vm_clock_nsec % NSEC_PER_SEC);
	if (sn->icount != -1)
		json_s64(w, "icount", sn->icount);
	if (sn->has_disk_size)
		json_u64(w, "disk-size", sn->disk_size);
	json_u64(w, "l1-table-offset", sn->l1_table_offset);
	json_u64(w, "l1-size", sn->l1_size);
	json_u64(w, "extra-data-size", sn->extra_data_size);
	json_object_end(w);
}

static void info_json(const struct qc_image *qi, const struct qc_snapshots *sns)
{
	const struct qcow2_header *h = &qi->img.hdr;
	const struct qcow2_extensions *ext = &qi->img.ext;
	struct json_writer w;
	unsigned int i;

	json_init(&w, stdout);
	json_object_begin(&w, NULL);
	json_string(&w, "filename", qi->path);
	json_string(&w, "format", "qcow2");
	json_u64(&w, "version", h->version);
	json_string(&w, "compat", compat_str(h));
	json_u64(&w, "virtual-size", h->size);
	json_u64(&w, "file-size", qi->file_size);
	json_u64(&w, "cluster-size", h->cluster_size);
	json_u64(&w, "cluster-bits", h->cluster_bits);
	json_u64(&w, "header-length", h->header_length);
	json_u64(&w, "l1-table-offset", h->l1_table_offset);
	json_u64(&w, "l1-size", h->l1_size);
	json_u64(&w, "refcount-table-offset", h->refcount_table_offset);
	json_u64(&w, "refcount-table-clusters", h->refcount_table_clusters);
	json_u64(&w, "refcount-order", h->refcount_order);
	json_u64(&w, "refcount-bits", 1ULL << h->refcount_order);
	json_string(&w, "compression-type",
		    qc_compression_name(h->compression_type));
	json_string(&w, "encryption", qc_crypt_name(h->crypt_method));
	json_bool(&w, "dirty-flag",
		  h->incompatible_features & QCOW2_INCOMPAT_DIRTY);
	json_bool(&w, "corrupt",
		  h->incompatible_features & QCOW2_INCOMPAT_CORRUPT);
	json_bool(&w, "lazy-refcounts",
		  h->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS);
	json_bool(&w, "extended-l2", h->extended_l2);
	for (i = 0; i < ARRAY_SIZE(feature_type_names); i++)
		json_features(&w, &qi->img, i);
	if (ext->has_backing_file)
		json_string(&w, "backing-filename", ext->backing_file);
	if (ext->has_backing_format)
		json_string(&w, "backing-filename-format", ext->backing_format);
	if (ext->has_data_file)
		json_string(&w, "data-file", ext->data_file);
	if (h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE)
		json_bool(&w, "data-file-raw", h->autoclear_features &
					       QCOW2_AUTOCLEAR_DATA_FILE_RAW);
	if (ext->has_bitmaps) {
		json_object_begin(&w, "bitmaps");
		json_u64(&w, "count", ext->nb_bitmaps);
		json_u64(&w, "directory-offset", ext->bitmap_directory_offset);
		json_u64(&w, "directory-size", ext->bitmap_directory_size);
		json_object_end(&w);
	}
	if (ext->has_crypto) {
		json_object_begin(&w, "crypto");
		json_u64(&w, "offset", ext->crypto_offset);
		json_u64(&w, "length", ext->crypto_length);
		json_object_end(&w);
	}
	json_u64(&w, "feature-name-table-entries", ext->nr_feature_names);
	json_u64(&w, "unknown-extensions", ext->nr_unknown);
	json_u64(&w, "snapshots-offset", h->snapshots_offset);
	json_array_begin(&w, "snapshots");
	for (i = 0; i < sns->nr; i++)
		json_snapshot(&w, &sns->sn[i]);
	json_array_end(&w);
	json_object_end(&w);
}

int cmd_info(const struct qc_cmd *cmd, int argc, char **argv)
{
	struct qc_snapshots sns;
	struct qc_image *qi;
	bool json = false;
	int c, ret;

	c = qc_parse_json_opts(cmd, argc, argv, &json);
	if (c >= 0)
		return c;
	if (argc - optind != 1)
		return qc_usage_error(cmd, argc == optind ?
				      "missing IMAGE" : "too many arguments");

	qi = qc_image_open(argv[optind]);
	if (!qi)
		return QC_EXIT_FAIL;
	ret = qc_image_read_snapshots(qi, &sns);
	if (ret) {
		qc_image_close(qi);
		return QC_EXIT_FAIL;
	}
	if (json)
		info_json(qi, &sns);
	else
		info_text(qi, &sns);
	qc_snapshots_free(&sns);
	qc_image_close(qi);
	if (fflush(stdout) || ferror(stdout)) {
		qc_err("write error on standard output");
		return QC_EXIT_FAIL;
	}
	return QC_EXIT_OK;
}
