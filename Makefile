# SPDX-License-Identifier: GPL-2.0
#
# qcow top-level Makefile.
#
#   make            build drivers/block/qcow/qcow.ko and userspace/qcowctl
#   make check      install test dependencies, run every test (KUnit in UML,
#                   userspace tests, lint, VM tests); ends with "N passed, N failed"
#   make demo       install dependencies, build, show qcow working in a VM
#   make stress     10,000 mutated images, 200 power cuts in fsync-heavy writes, 100
#                   during snapshot create/delete (check: 200, 20, 22); one tally line;
#                   then 30 minutes of verified writes under snapshot create/delete
#   make fuzz       libFuzzer over the format core, FUZZ_SECONDS (default 600) per
#                   target (check runs 20 s each), then a coverage report
#   make install    build, then install qcow.ko, qcowctl, its man page, bash
#                   completion and udev rule (DESTDIR=, PREFIX=/usr/local)
#   make uninstall  remove what make install installed
#   make dkms-install    register the module with DKMS (rebuilt for new kernels)
#   make dkms-uninstall  remove it from DKMS again
#
# KDIR defaults to the running kernel's build tree, else the newest
# installed Debian linux-headers package.

ifeq ($(origin KDIR),undefined)
KDIR := $(firstword $(wildcard /lib/modules/$(shell uname -r)/build) \
	  $(shell ls -d /lib/modules/*/build 2>/dev/null | sort -V | tail -n 1))
endif

export KDIR

.PHONY: all module qcowctl clean deps check kunit utest lint vmtest demo bench stress fuzz help \
	install uninstall dkms-source dkms-install dkms-uninstall

all: module qcowctl

module:
	@if [ -z "$(KDIR)" ] || [ ! -d "$(KDIR)" ]; then \
		echo "qcow: no kernel build tree (KDIR='$(KDIR)'): install linux-headers-$$(uname -r) or linux-headers-amd64, or pass KDIR=" >&2; \
		exit 1; \
	fi
	$(MAKE) -C $(KDIR) M=$(CURDIR) CONFIG_BLK_DEV_QCOW=m modules

qcowctl:
	$(MAKE) -C userspace

clean:
	@if [ -n "$(KDIR)" ] && [ -d "$(KDIR)" ]; then \
		$(MAKE) -C $(KDIR) M=$(CURDIR) clean; fi
	$(MAKE) -C userspace clean
	rm -rf build

deps:
	scripts/install-deps.sh

check:
	scripts/check.sh

kunit:
	tests/kunit/run.sh

utest: qcowctl
	tests/userspace/run.sh

lint:
	scripts/lint.sh

vmtest: all
	tests/vm/run-tests.sh

demo:
	scripts/install-deps.sh
	$(MAKE) all
	tests/vm/demo.sh

bench: all
	tests/bench/run.sh

stress: all
	tests/vm/mutate/stress.sh -n 10000 \
		-p 'tests/vm/powercut.sh -n 200' \
		-p 'tests/vm/powercut.sh -n 100 snap'
	QCOW_SNAP_CASES=load QCOW_SNAP_LOAD_SECONDS=1800 QCOW_VM_TIMEOUT=2700 \
		tests/vm/run-vm.sh --name snapshot-soak tests/vm/guest/t-snapshot.sh

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh --long

help:
	@sed -n '3,21p' Makefile

# --- install -------------------------------------------------------------------
#
# make install [DESTDIR=/staging] [PREFIX=/usr/local] [KVER=...]
#
# The module goes to /lib/modules/$(KVER)/extra (KVER: the release of the
# kernel in KDIR, the one it was built for) and depmod runs, unless DESTDIR
# is set (a staging tree: whoever installs it runs depmod).  The rest goes
# under PREFIX; udev and bash-completion read /usr/local as well as /usr.
# See Documentation/install.rst.

QCOW_VERSION := $(shell sed -n 's/^PACKAGE_VERSION="\{0,1\}\([^"]*\)"\{0,1\}$$/\1/p' $(CURDIR)/dkms.conf)
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
UDEVRULESDIR ?= $(PREFIX)/lib/udev/rules.d
KVER = $(shell sed -n 's/^\#define UTS_RELEASE "\(.*\)"$$/\1/p' $(KDIR)/include/generated/utsrelease.h 2>/dev/null)
MODDIR = /lib/modules/$(KVER)/extra
DKMS_SRCDIR ?= /usr/src/qcow-$(QCOW_VERSION)
DEPMOD ?= PATH="$$PATH:/sbin:/usr/sbin" depmod
DKMS ?= PATH="$$PATH:/sbin:/usr/sbin" dkms

INSTALLED := $(MODDIR)/qcow.ko $(SBINDIR)/qcowctl $(MANDIR)/man8/qcowctl.8 \
	$(BASHCOMPDIR)/qcowctl $(UDEVRULESDIR)/60-qcow.rules

install: all
	@if [ -z "$(KVER)" ]; then \
		echo "qcow: cannot tell the kernel release of KDIR='$(KDIR)': pass KVER=" >&2; exit 1; fi
	install -D -m 0644 drivers/block/qcow/qcow.ko $(DESTDIR)$(MODDIR)/qcow.ko
	install -D -m 0755 userspace/qcowctl $(DESTDIR)$(SBINDIR)/qcowctl
	install -D -m 0644 Documentation/qcowctl.8 $(DESTDIR)$(MANDIR)/man8/qcowctl.8
	install -D -m 0644 packaging/bash-completion/qcowctl $(DESTDIR)$(BASHCOMPDIR)/qcowctl
	install -D -m 0644 packaging/udev/60-qcow.rules $(DESTDIR)$(UDEVRULESDIR)/60-qcow.rules
	$(if $(DESTDIR),@echo "qcow: DESTDIR set: not running depmod",$(DEPMOD) -a $(KVER))

uninstall:
	@if [ -z "$(KVER)" ]; then \
		echo "qcow: cannot tell the kernel release of KDIR='$(KDIR)': pass KVER=" >&2; exit 1; fi
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	$(if $(DESTDIR),,$(DEPMOD) -a $(KVER))

# The source tree DKMS builds from: what `make module` needs, nothing else.
DKMS_FILES := Kbuild Makefile dkms.conf include/uapi/linux/qcow.h \
	drivers/block/qcow/Kconfig drivers/block/qcow/Makefile \
	$(filter-out %.mod.c,$(wildcard drivers/block/qcow/*.[ch]))

dkms-source:
	@if [ -z "$(QCOW_VERSION)" ]; then echo "qcow: no PACKAGE_VERSION in dkms.conf" >&2; exit 1; fi
	rm -rf $(DESTDIR)$(DKMS_SRCDIR)
	for f in $(DKMS_FILES); do \
		install -D -m 0644 $$f $(DESTDIR)$(DKMS_SRCDIR)/$$f || exit 1; done

dkms-install:
	@if [ -n "$(DESTDIR)" ]; then echo "qcow: dkms-install does not take DESTDIR" >&2; exit 1; fi
	@$(DKMS) remove qcow/$(QCOW_VERSION) --all >/dev/null 2>&1 || true
	$(MAKE) dkms-source
	$(DKMS) add qcow/$(QCOW_VERSION)
	$(DKMS) build qcow/$(QCOW_VERSION) $(if $(KVER),-k $(KVER))
	$(DKMS) install qcow/$(QCOW_VERSION) $(if $(KVER),-k $(KVER))

dkms-uninstall:
	-$(DKMS) remove qcow/$(QCOW_VERSION) --all
	rm -rf $(DKMS_SRCDIR)
