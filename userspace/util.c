// SPDX-License-Identifier: GPL-2.0
/*
 * qcowctl: small formatting helpers shared by the commands.
 */
#include <stdio.h>

#include "qcowctl.h"

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
