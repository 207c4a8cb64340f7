set terminal pngcairo size 3320,700 font ",10"
set output "chart.png"
set title "usmc speed relative to TCP, same run (median, min-max; > 1: usmc faster)\nvm, 2 CPUs, 2026-12-05 16:12 UTC"
set logscale y 2
set yrange [0.0008877840909:35.2]
set ytics ("1/1024" 0.0009765625, "1/512" 0.001953125, "1/256" 0.00390625, "1/128" 0.0078125, "1/64" 0.015625, "1/32" 0.03125, "1/16" 0.0625, "1/8" 0.125, "1/4" 0.25, "1/2" 0.5, "1" 1, "2" 2, "4" 4, "8" 8, "16" 16, "32" 32)
set grid ytics
set xtics rotate by -60 left font ",8"
set xrange [-1:52]
set bmargin 16
set style fill solid 0.5
set boxwidth 0.6
set key top left
plot "chart.dat" using 1:3:xtic(2) with boxes lc rgb "#4477aa" title "usmc/TCP speed (latency, memory: TCP/usmc)", \
     "" using 1:3:4:5 with yerrorbars lc rgb "black" pt -1 title "min-max", \
     "" using 1:6 with points pt 9 ps 1.5 lc rgb "#cc3311" title "target", \
     1 with lines lc rgb "gray" dt 2 notitle
