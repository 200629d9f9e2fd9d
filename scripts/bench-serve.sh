#!/usr/bin/env bash
# Startup time (exec to /readyz answering 200) and resident memory of
# `converge serve` on an empty embedded store, over N runs; prints medians.
# Usage: scripts/bench-serve.sh [runs]   (builds ./bin/converge first)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-5}
lib=$(bash scripts/install-chdb.sh | tail -n 1)
go build -o bin/converge ./cmd/converge
port=$((20000 + RANDOM % 10000)); chport=$((port + 1))
starts=(); rss=()
for ((i = 0; i < runs; i++)); do
  dir=$(mktemp -d)
  t0=$(date +%s%N)
  CONVERGE_ENGINE_LIB=$lib CONVERGE_ENGINE_HTTP_LISTEN=127.0.0.1:$chport \
    ./bin/converge serve --data-dir "$dir/data" --addr 127.0.0.1:$port --log-level warn &
  pid=$!
  until curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
    kill -0 $pid 2>/dev/null || { echo "serve exited" >&2; exit 1; }
    sleep 0.01
  done
  t1=$(date +%s%N)
  sleep 1 # let start-up settle before reading memory
  starts+=($(( (t1 - t0) / 1000000 )))
  rss+=($(awk '/VmRSS/ {print int($2/1024)}' /proc/$pid/status))
  kill -TERM $pid; wait $pid || true
  rm -rf "$dir"
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "runs: $runs  startup to /readyz: ${starts[*]} ms (median $(med "${starts[@]}") ms)  RSS: ${rss[*]} MiB (median $(med "${rss[@]}") MiB)"
