# bench:logs' app (busybox ash, run as the container's command by /bin/sh -c): httpd on
# :8080 for the deploy's health probe, then, each time /tmp/berth-bench-go appears with
# "rate seconds phase" in it, `rate` lines a second for `seconds` seconds, paced against
# the clock (a millisecond's nap between catch-ups), each with its own emit time in µs:
#   bench <phase> <seq> <emit µs>
# between a "bench <phase> start …" and a "bench <phase> end …" line.
/bin/httpd -p 8080 -h /www
while :; do
  if [ -f /tmp/berth-bench-go ]; then
    read rate secs tag </tmp/berth-bench-go
    /bin/busybox rm -f /tmp/berth-bench-go
    total=$((rate * secs))
    i=0
    t0=${EPOCHREALTIME/./}
    echo "bench $tag start $total $t0"
    while [ $i -lt $total ]; do
      due=$(((${EPOCHREALTIME/./} - t0) * rate / 1000000 + 1))
      [ $due -gt $total ] && due=$total
      while [ $i -lt $due ]; do
        i=$((i + 1))
        echo "bench $tag $i ${EPOCHREALTIME/./}"
      done
      /bin/busybox usleep 1000
    done
    echo "bench $tag end $total ${EPOCHREALTIME/./}"
  fi
  /bin/busybox usleep 20000
done
