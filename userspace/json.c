// SPDX-License-Identifier: GPL-2.0
/*
 * Tiny streaming JSON writer, see json.h.
 *
 * Strings from an image (backing file names, snapshot names) are arbitrary
 * bytes, so the escaper validates UTF-8 itself rather than trusting them:
 * well-formed sequences pass through, anything else (overlong forms,
 * surrogates, code points above U+10FFFF, truncated sequences) becomes
 * U+FFFD, and control characters are escaped.
 */
#include <stdlib.h>
#include <string.h>

#include "json.h"

void json_init(struct json_writer *w, FILE *out)
{
	memset(w, 0, sizeof(*w));
	w->out = out;
}

static void json_indent(struct json_writer *w)
{
	unsigned int i;

	for (i = 0; i < w->depth; i++)
		fputs("  ", w->out);
}

/* Separator, newline and indentation before a value, then its key. */
static void json_prefix(struct json_writer *w, const char *key)
{
	if (w->depth) {
		if (w->has_members[w->depth - 1])
			fputc(',', w->out);
		w->has_members[w->depth - 1] = true;
		fputc('\n', w->out);
		json_indent(w);
	}
	if (key) {
		json_put_string(w->out, key, strlen(key));
		fputs(": ", w->out);
	}
}

static void json_open(struct json_writer *w, const char *key, char c)
{
	json_prefix(w, key);
	fputc(c, w->out);
	if (w->depth >= JSON_MAX_DEPTH)
		abort();	/* a programming error, not an input error */
	w->has_members[w->depth++] = false;
}

static void json_close(struct json_writer *w, char c)
{
	bool had_members;

	if (!w->depth)
		abort();
	had_members = w->has_members[--w->depth];
	if (had_members) {
		fputc('\n', w->out);
		json_indent(w);
	}
	fputc(c, w->out);
	if (!w->depth)
		fputc('\n', w->out);
}

void json_object_begin(struct json_writer *w, const char *key)
{
	json_open(w, key, '{');
}

void json_object_end(struct json_writer *w)
{
	json_close(w, '}');
}

void json_array_begin(struct json_writer *w, const char *key)
{
	json_open(w, key, '[');
}

void json_array_end(struct json_writer *w)
{
	json_close(w, ']');
}

/*
 * Length of the well-formed UTF-8 sequence at @p (at most @n bytes), or 0
 * when the bytes there are not one (RFC 3629 table 3-7).
 */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;	/* no overlong forms */
		else if (p[0] == 0xed)
			hi = 0x9f;	/* no surrogates */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		if (p[0] == 0xf0)
			lo = 0x90;
		else if (p[0] == 0xf4)
			hi = 0x8f;	/* nothing above U+10FFFF */
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

void json_put_string(FILE *out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;

	fputc('"', out);
	while (i < len) {
		unsigned char c = p[i];

		switch (c) {
		case '"':
			fputs("\\\"", out);
			break;
		case '\\':
			fputs("\\\\", out);
			break;
		case '\b':
			fputs("\\b", out);
			break;
		case '\f':
			fputs("\\f", out);
			break;
		case '\n':
			fputs("\\n", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		default:
			if (c < 0x20 || c == 0x7f) {
				fprintf(out, "\\u%04x", c);
				break;
			}
			n = utf8_seq_len(p + i, len - i);
			if (!n) {
				fputs("\\ufffd", out);
				break;
			}
			fwrite(p + i, 1, n, out);
			i += n;
			continue;
		}
		i++;
	}
	fputc('"', out);
}

void json_string_n(struct json_writer *w, const char *key, const char *s,
		   size_t len)
{
	json_prefix(w, key);
	json_put_string(w->out, s, len);
	if (!w->depth)
		fputc('\n', w->out);
}

void json_string(struct json_writer *w, const char *key, const char *s)
{
	if (!s)
		json_null(w, key);
	else
		json_string_n(w, key, s, strlen(s));
}

void json_u64(struct json_writer *w, const char *key, uint64_t v)
{
	json_prefix(w, key);
	fprintf(w->out, "%llu", (unsigned long long)v);
	if (!w->depth)
		fputc('\n', w->out);
}

void json_s64(struct json_writer *w, const char *key, int64_t v)
{
	json_prefix(w, key);
	fprintf(w->out, "%lld", (long long)v);
	if (!w->depth)
		fputc('\n', w->out);
}

void json_bool(struct json_writer *w, const char *key, bool v)
{
	json_prefix(w, key);
	fputs(v ? "true" : "false", w->out);
	if (!w->depth)
		fputc('\n', w->out);
}

void json_null(struct json_writer *w, const char *key)
{
	json_prefix(w, key);
	fputs("null", w->out);
	if (!w->depth)
		fputc('\n', w->out);
}
