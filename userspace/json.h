/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A tiny streaming JSON writer for qcowctl's --json output.
 *
 * Calls nest like the document: json_object_begin()/json_object_end(),
 * json_array_begin()/json_array_end(), and scalars in between.  @key names
 * the member inside an object and must be NULL inside an array and for the
 * top-level value.  Output is pretty-printed with two-space indentation and
 * is always valid UTF-8: strings are escaped and invalid UTF-8 sequences are
 * replaced by U+FFFD.
 */
#ifndef QCOWCTL_JSON_H
#define QCOWCTL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH	32

struct json_writer {
	FILE *out;
	unsigned int depth;
	bool has_members[JSON_MAX_DEPTH];	/* per open container */
};

void json_init(struct json_writer *w, FILE *out);
void json_object_begin(struct json_writer *w, const char *key);
void json_object_end(struct json_writer *w);
void json_array_begin(struct json_writer *w, const char *key);
void json_array_end(struct json_writer *w);
void json_string(struct json_writer *w, const char *key, const char *s);
void json_string_n(struct json_writer *w, const char *key, const char *s,
		   size_t len);
void json_u64(struct json_writer *w, const char *key, uint64_t v);
void json_s64(struct json_writer *w, const char *key, int64_t v);
void json_bool(struct json_writer *w, const char *key, bool v);
void json_null(struct json_writer *w, const char *key);

/* Write @s (@len bytes) as a quoted, escaped JSON string. */
void json_put_string(FILE *out, const char *s, size_t len);

#endif /* QCOWCTL_JSON_H */
