# SPDX-License-Identifier: GPL-2.0
#
# Chart of `make bench`: qcow's throughput as a ratio to loop and to
# qemu-nbd per workload (median of the per-round ratios, bars from the
# lowest to the highest round), with the issue's goals for 4K randread QD16.
# Run in build/bench/ by tests/bench/run.sh: reads ratios.dat and title.txt
# (both written by report.py), writes ratios.png.

set terminal pngcairo size 1100,600 font "sans,11" noenhanced
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
	"1" 1, "2" 2, "2.5" 2.5, "4" 4, "8" 8, "16" 16, "32" 32, "64" 64, \
	"128" 128, "256" 256)
set grid ytics lc rgb "#dddddd"
set key top left
set ylabel "ratio (log scale)"
set xtics nomirror
set datafile missing "NaN"

# Bar centres of the clustered histogram (2 series, gap 1.5); the values
# are printed at the foot of the bars, clear of the whiskers.
w = 1.0 / (2 + 1.5)
fmt(v) = v >= 10 ? sprintf("%.0f", v) : sprintf("%.2f", v)
plot "ratios.dat" using 2:3:4:xtic(1) title "qcow / loop (raw, direct I/O)" lc rgb "#4472c4", \
     "" using 5:6:7 title "qcow / qemu-nbd" lc rgb "#ed7d31", \
     "" using ($0 - w / 2):(0.08):(fmt($2)) with labels notitle, \
     "" using ($0 + w / 2):(0.08):(fmt($5)) with labels notitle, \
     1 with lines lc rgb "black" lw 1 notitle, \
     0.9 with lines dt 2 lc rgb "#4472c4" lw 2 title "goal vs loop (4K QD16): 0.90", \
     2.5 with lines dt 2 lc rgb "#ed7d31" lw 2 title "goal vs qemu-nbd (4K QD16): 2.5"
