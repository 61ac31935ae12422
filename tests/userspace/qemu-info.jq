# SPDX-License-Identifier: GPL-2.0
#
# `qemu-img info --output=json` reduced to the fields `qcowctl info --json`
# must agree on; absent booleans take the defaults qemu leaves implicit
# (version 2 images carry no lazy-refcounts/corrupt/extended-l2).
def fs: .["format-specific"].data;
{
	"virtual-size": .["virtual-size"],
	"cluster-size": .["cluster-size"],
	"compat": fs.compat,
	"refcount-bits": fs["refcount-bits"],
	"lazy-refcounts": (fs["lazy-refcounts"] // false),
	"extended-l2": (fs["extended-l2"] // false),
	"compression-type": (fs["compression-type"] // "zlib"),
	"corrupt": (fs.corrupt // false),
	"dirty-flag": (.["dirty-flag"] // false),
	"backing-filename": .["backing-filename"],
	"backing-filename-format": .["backing-filename-format"],
	"data-file": fs["data-file"],
	"data-file-raw": fs["data-file-raw"],
	"bitmaps": ((fs.bitmaps // []) | length),
	"snapshots": [(.snapshots // [])[] | with_entries(select(.key | IN(
		"id", "name", "vm-state-size", "date-sec", "date-nsec",
		"vm-clock-sec", "vm-clock-nsec", "icount")))]
}
