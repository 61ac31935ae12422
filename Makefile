# SPDX-License-Identifier: GPL-2.0
#
# qcow top-level Makefile.
#
#   make            build drivers/block/qcow/qcow.ko and userspace/qcowctl
#   make check      install test dependencies, run every test (KUnit in UML,
#                   userspace tests, lint, VM tests); ends with "N passed, N failed"
#   make demo       install dependencies, build, show qcow working in a VM
#   make stress     200 power cuts in the middle of fsync-heavy writes (check runs 20)
#
# KDIR defaults to the running kernel's build tree, else the newest
# installed Debian linux-headers package.

ifeq ($(origin KDIR),undefined)
KDIR := $(firstword $(wildcard /lib/modules/$(shell uname -r)/build) \
	  $(shell ls -d /lib/modules/*/build 2>/dev/null | sort -V | tail -n 1))
endif

export KDIR

.PHONY: all module qcowctl clean deps check kunit utest lint vmtest demo bench stress help

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
	tests/vm/powercut.sh -n 200

help:
	@sed -n '3,13p' Makefile
