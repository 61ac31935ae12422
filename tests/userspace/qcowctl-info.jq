# SPDX-License-Identifier: GPL-2.0
#
# `qcowctl info --json` reduced to the fields of qemu-info.jq.  qemu lists
# bitmaps only while the autoclear "bitmaps" bit says they are consistent.
{
	"virtual-size": .["virtual-size"],
	"cluster-size": .["cluster-size"],
	"compat": .compat,
	"refcount-bits": .["refcount-bits"],
	"lazy-refcounts": .["lazy-refcounts"],
	"extended-l2": .["extended-l2"],
	"compression-type": .["compression-type"],
	"corrupt": .corrupt,
	"dirty-flag": .["dirty-flag"],
	"backing-filename": .["backing-filename"],
	"backing-filename-format": .["backing-filename-format"],
	"data-file": .["data-file"],
	"data-file-raw": .["data-file-raw"],
	"bitmaps": (if any(.["autoclear-features"][]; .bit == 0)
		    then (.bitmaps.count // 0) else 0 end),
	"snapshots": [.snapshots[] | with_entries(select(.key | IN(
		"id", "name", "vm-state-size", "date-sec", "date-nsec",
		"vm-clock-sec", "vm-clock-nsec", "icount")))]
}
