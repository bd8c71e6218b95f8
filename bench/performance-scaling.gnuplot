# Plots docs/performance-scaling.tsv (written by bench/targets/scaling.ts: one block per concurrency, in the
# order 1, 4, 16, 64): throughput and the daemon's peak RSS against object size. Run by the scaling target:
#   gnuplot -e "data='docs/performance-scaling.tsv'; out='docs/performance-scaling.png'" bench/performance-scaling.gnuplot
set terminal pngcairo size 1200,520 font "DejaVu Sans,11"
set output out
set datafile separator "\t"
set datafile commentschars "#"
concurrencies = "1 4 16 64"
set logscale x 2
set xrange [512:2147483648]
set xtics ("1K" 1024, "64K" 65536, "1M" 1048576, "16M" 16777216, "256M" 268435456, "1G" 1073741824)
set grid
set xlabel "object size (bytes: K = 1024)"
set key top left title "concurrent creates"
set multiplot layout 1,2 title "Creates through the daemon (A1 encryption, folder backend; 1 GB at concurrency 1 only)"
set title "throughput"
set ylabel "MB/s of attachments"
set logscale y 10
plot for [i=0:3] data index i using 1:6 with linespoints lw 2 pt 7 title word(concurrencies, i + 1)
set title "daemon peak RSS (VmHWM)"
set ylabel "MB"
unset logscale y
set yrange [0:700]
plot for [i=0:3] data index i using 1:7 with linespoints lw 2 pt 7 title word(concurrencies, i + 1), \
     600 with lines dt 2 lc rgb "red" title "600 MB goal"
unset multiplot
