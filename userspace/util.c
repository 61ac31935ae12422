// SPDX-License-Identifier: GPL-2.0
/*
 * qcowctl: small formatting helpers shared by the commands.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qcowctl.h"

#define QC_BUSY_STEP_MS		50
/* systemd-udevd keeps this file while its event queue is not empty. */
#define QC_UDEV_QUEUE		"/run/udev/queue"

/**
 * qc_busy_retry() - whether to try again a call that failed with EBUSY
 * @b: zeroed before the first call, then passed to each
 *
 * The first EBUSY is retried at once (udev may just have finished).  After
 * that, a retry is worth it only once udev's event queue drained: wait
 * while it is not empty, QC_BUSY_WAIT_MS in all.  With udev idle (or not
 * running), an EBUSY stands: the disk is really in use.
 *
 * Return: true to try again, false to report the EBUSY.
 */
bool qc_busy_retry(struct qc_busy *b)
{
	struct timespec ts;
	bool waited = false;

	if (!b->tries++)
		return true;
	while (!access(QC_UDEV_QUEUE, F_OK)) {
		if (b->waited_ms >= QC_BUSY_WAIT_MS)
			return false;
		ts = (struct timespec){ .tv_nsec = QC_BUSY_STEP_MS * 1000000L };
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		b->waited_ms += QC_BUSY_STEP_MS;
		waited = true;
	}
	return waited;
}

/* "0 B", "512 B", "1.28 MiB", "4 TiB": three significant digits, IEC units. */
void qc_size_str(char *buf, size_t len, u64 size)
{
	static const char * const units[] = {
		"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB",
	};
	unsigned int u = 0;
	double v = (double)size;

	if (size < 1024) {
		snprintf(buf, len, "%llu B", size);
		return;
	}
	while (v >= 1024.0 && u < ARRAY_SIZE(units) - 1) {
		v /= 1024.0;
		u++;
	}
	/* %g drops trailing zeros: 1 GiB, 1.5 GiB, 1.28 MiB */
	snprintf(buf, len, "%.3g %s", v, units[u]);
}

/*
 * "0B", "512B", "64K", "1.5G", "4T": the compact form of lsblk, for table
 * columns that must not contain spaces.
 */
void qc_size_short(char *buf, size_t len, u64 size)
{
	static const char units[] = "BKMGTPE";
	unsigned int u = 0;
	double v = (double)size;

	if (size < 1024) {
		snprintf(buf, len, "%lluB", size);
		return;
	}
	while (v >= 1024.0 && u < sizeof(units) - 2) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, len, "%.3g%c", v, units[u]);
}

/**
 * qc_parse_size() - parse a byte count with an optional binary suffix
 * @s: "65536", "64K", "64k", "64KiB", "1M", "1G", "2T" (K = 1024 bytes)
 * @out: the number of bytes
 *
 * Return: 0, -EINVAL for anything else, -ERANGE when it overflows 64 bits.
 */
int qc_parse_size(const char *s, u64 *out)
{
	unsigned long long v;
	unsigned int shift;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;	/* strtoull takes " 1" and "-1" */
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -errno;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		shift = 0;
		break;
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (shift) {
		end++;
		/* an IEC spelling of the same unit is fine */
		if (!strcmp(end, "iB") || !strcmp(end, "B"))
			end += strlen(end);
	}
	if (*end)
		return -EINVAL;
	if (v > (U64_MAX >> shift))
		return -ERANGE;
	*out = (u64)v << shift;
	return 0;
}

/*
 * Print an image-supplied string for a terminal: printable ASCII and
 * UTF-8 bytes as they are, control characters and DEL as \xNN, so that a
 * crafted snapshot name cannot drive the terminal.
 */
void qc_put_text(FILE *out, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = s[i];

		if (c == '\\')
			fputs("\\\\", out);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
}

/**
 * qc_escape() - a copy of @s that is safe to print, see qc_put_text()
 * @s: string, possibly from an image
 *
 * For messages that quote names found inside an image.
 *
 * Return: the copy (free() it); NULL only when out of memory.
 */
char *qc_escape(const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	qc_put_text(f, s, strlen(s));
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

const char *qc_compression_name(unsigned int type)
{
	switch (type) {
	case QCOW2_COMPRESSION_ZLIB:
		return "zlib";
	case QCOW2_COMPRESSION_ZSTD:
		return "zstd";
	default:
		return NULL;
	}
}

const char *qc_crypt_name(unsigned int method)
{
	switch (method) {
	case QCOW2_CRYPT_NONE:
		return "none";
	case QCOW2_CRYPT_AES:
		return "aes";
	case QCOW2_CRYPT_LUKS:
		return "luks";
	default:
		return NULL;
	}
}
