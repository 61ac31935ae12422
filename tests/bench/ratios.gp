# SPDX-License-Identifier: GPL-2.0
#
# Chart of `make bench`: qcow's throughput as a ratio to loop and to
# qemu-nbd per workload (median of the per-round ratios, bars from the
# lowest to the highest round), with the issues' goals as black marks on
# the bars they apply to, and "n/a" where qcow could not run the row.
# Run in build/bench/ by tests/bench/run.sh: reads ratios.dat and title.txt
# (both written by report.py), writes ratios.png.

set terminal pngcairo size 1600,650 font "sans,11" noenhanced
set output "ratios.png"

title = system("cat title.txt 2>/dev/null")
set title "qcow / peer throughput (higher is better)\n".title

set style data histogram
set style histogram errorbars gap 1.5 lw 1.5
set style fill solid 0.8 border -1
set boxwidth 0.9
set logscale y 2
set yrange [0.0625:*]
set ytics ("1/16" 0.0625, "1/8" 0.125, "1/4" 0.25, "1/2" 0.5, "0.9" 0.9, \
	"1" 1, "2" 2, "3" 3, "4" 4, "8" 8, "16" 16, "32" 32, "64" 64, \
	"128" 128, "256" 256)
set grid ytics lc rgb "#dddddd"
set key top left
set ylabel "ratio (log scale)"
set xtics nomirror rotate by -30
set datafile missing "NaN"

# Bar centres of the clustered histogram (2 series, gap 1.5); the values
# (or n/a) are printed at the foot of the bars, clear of the whiskers; a
# goal is a black dash across its bar.
w = 1.0 / (2 + 1.5)
plot "ratios.dat" using 2:3:4:xtic(1) title "qcow / loop (raw, direct I/O)" lc rgb "#4472c4", \
     "" using 5:6:7 title "qcow / qemu-nbd" lc rgb "#ed7d31", \
     "" using ($0 - w / 2):(0.07):10 with labels rotate by 90 left font ",9" notitle, \
     "" using ($0 + w / 2):(0.07):11 with labels rotate by 90 left font ",9" notitle, \
     "" using ($0 - w):8:(w):(0) with vectors nohead lw 4 lc rgb "black" title "goal (strictest of issues 3, 4, 6)", \
     "" using ($0):9:(w):(0) with vectors nohead lw 4 lc rgb "black" notitle, \
     1 with lines lc rgb "black" lw 1 notitle
