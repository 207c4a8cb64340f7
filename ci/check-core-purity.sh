#!/usr/bin/env bash
# core/ is sans-I/O: no sockets, clocks, threads, environment or printing.
set -euo pipefail
cd "$(dirname "$0")/.."
pattern='\b(socket|connect|accept|bind|listen|send|sendto|sendmsg|recv|recvfrom|recvmsg|read|write|epoll_[a-z_]+|poll|select|clock_gettime|gettimeofday|time|nanosleep|usleep|sleep|pthread_[a-z_]+|getenv|setenv|printf|fprintf|vfprintf|puts|fputs|perror|malloc|calloc|realloc|free|abort|exit|rand|random|open|fopen)\s*\('
bad_inc='#\s*include\s*<(sys/socket\.h|netinet/.*|arpa/.*|pthread\.h|time\.h|sys/time\.h|stdio\.h|unistd\.h|fcntl\.h|sys/epoll\.h)>'
fail=0
# Strip comments and string literals before matching.
for f in core/*.c core/*.h; do
  hits=$(sed -e 's://.*$::' "$f" | perl -0pe 's{/\*.*?\*/}{}gs; s{"(\\.|[^"\\])*"}{""}g' \
         | grep -nE "$pattern|$bad_inc" | grep -vE '(->|\.)(alloc|free|send|recv|read|write|rand)\b' || true)
  if [ -n "$hits" ]; then
    echo "core purity: $f calls the outside world:"; echo "$hits"; fail=1
  fi
done
[ "$fail" = 0 ] && echo "check-core-purity: core/ is sans-I/O"
exit $fail
