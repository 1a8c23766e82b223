# figure7.gp - the benchmark's chart, laid out like the paper's Figure 7:
# throughput, CPU and memory per consumer mode, the paper's figures beside
# sluice's (live and drain). bench/run.sh calls it with dir='<results>',
# which holds throughput.dat, cpu.dat and memory.dat.
set terminal pngcairo size 1500,500 font "DejaVu Sans,11"
set output dir.'/figure7.png'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key below horizontal
set yrange [0:*]
set xrange [-0.6:1.6]
set multiplot layout 1,3 title "Parallel vs unified consumers, four sources: paper vs sluice (medians)"

set title "Throughput (msg/s)"
plot dir.'/throughput.dat' using 2:xtic(1) title "paper" lc rgb "#9e9e9e", \
     '' using 3 title "sluice live" lc rgb "#1f77b4", \
     '' using 4 title "sluice drain" lc rgb "#2ca02c"

set title "Worker CPU (% of one core)"
plot dir.'/cpu.dat' using 2:xtic(1) title "paper" lc rgb "#9e9e9e", \
     '' using 3 title "sluice live" lc rgb "#1f77b4", \
     '' using 4 title "sluice drain" lc rgb "#2ca02c"

set title "Worker memory (MB, log scale)"
set logscale y
set yrange [1:*]
plot dir.'/memory.dat' using 2:xtic(1) title "paper" lc rgb "#9e9e9e", \
     '' using 3 title "sluice live" lc rgb "#1f77b4", \
     '' using 4 title "sluice drain" lc rgb "#2ca02c"
unset multiplot
