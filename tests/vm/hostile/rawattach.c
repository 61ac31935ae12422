// SPDX-License-Identifier: GPL-2.0
/*
 * rawattach: attach an image with a bare QCOW_CTL_ATTACH ioctl, bypassing
 * qcowctl, so that tests see the kernel's own validation.
 *
 *   rawattach IMAGE [q:PATH | r:PATH ...]
 *
 * qcowctl checks images with the format core before the kernel sees them:
 * through it a hostile image never reaches the module.  This hands the
 * files over as they are (read-only; backing layers given explicitly, top
 * first, q: for qcow2, r: for raw).  Prints /dev/qcowN and exits 0, or
 * prints the errno name (EINVAL, EOPNOTSUPP, ELOOP...) on stderr and
 * exits 1.  Built by tests/vm/guest/t-hostile.sh at run time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/qcow.h>

static const char *errname(int e)
{
	switch (e) {
	case EINVAL: return "EINVAL";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ELOOP: return "ELOOP";
	case E2BIG: return "E2BIG";
	case EBADF: return "EBADF";
	case ENOMEM: return "ENOMEM";
	case EIO: return "EIO";
	default: return strerror(e);
	}
}

int main(int argc, char **argv)
{
	struct qcow_layer_desc layers[QCOW_MAX_LAYERS] = {};
	struct qcow_attach a = {};
	int ctl, i;

	if (argc < 2 || argc - 2 > QCOW_MAX_LAYERS) {
		fprintf(stderr, "usage: rawattach IMAGE [q:PATH | r:PATH ...]\n");
		return 2;
	}
	ctl = open("/dev/qcow-control", O_RDWR);
	if (ctl < 0) {
		perror("/dev/qcow-control");
		return 2;
	}
	a.image_fd = open(argv[1], O_RDONLY);
	if ((int)a.image_fd < 0) {
		perror(argv[1]);
		return 2;
	}
	for (i = 2; i < argc; i++) {
		struct qcow_layer_desc *l = &layers[i - 2];
		int fd;

		if ((argv[i][0] != 'q' && argv[i][0] != 'r') || argv[i][1] != ':') {
			fprintf(stderr, "rawattach: bad layer '%s'\n", argv[i]);
			return 2;
		}
		l->format = argv[i][0] == 'q' ? QCOW_FMT_QCOW2 : QCOW_FMT_RAW;
		fd = open(argv[i] + 2, O_RDONLY);
		if (fd < 0) {
			perror(argv[i] + 2);
			return 2;
		}
		l->fd = fd;
	}
	a.flags = QCOW_ATTACH_READ_ONLY;
	a.nr_layers = argc - 2;
	a.layers = (uintptr_t)layers;
	if (ioctl(ctl, QCOW_CTL_ATTACH, &a) < 0) {
		fprintf(stderr, "%s\n", errname(errno));
		return 1;
	}
	printf("/dev/qcow%u\n", a.index);
	return 0;
}
