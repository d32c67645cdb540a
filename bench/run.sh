#!/usr/bin/env bash
# Sextant's benchmarks: builds the binary and the harness (bench/harness),
# then measures Sextant on the distributed stack (Kafka, Cassandra, Redis of
# ./tilt/stack.sh, with a topic and keyspace of the run's own, deleted at the
# end) and on the embedded engines, with `sextant loadgen`.
#
# Usage: ./bench/run.sh [--quick | --full] [--backends distributed,embedded] [--merge RESULTS] [--keep] [--wait-idle] [--no-profile]
#   (default)  ~12 min on 2 cores: reports at 100k and 1M stored events;
#              writes bench/results.json and the "default" tables of BENCHMARKS.md
#   --quick    under 2 min, tiny sizes, what CI runs (no thresholds): writes
#              bench/results-quick.json and bench/out/<run>/tables.md only
#   --full     reports at 1M and 10M stored events (about an hour on 2 cores):
#              writes bench/results-full.json and the "full" tables of BENCHMARKS.md
#   --merge F  take the backends not measured now from the results file F
#              (e.g. --backends embedded --merge bench/results-full.json)
#   --wait-idle  first wait until no `go test` / test.sh runs on the machine
#   --no-profile do not record perf CPU profiles of the main phases (default
#              and full runs record them into bench/out/<run>/profiles when
#              perf is installed)
# Besides ingest, freshness, reports and replay, each backend measures the
# bytes on disk of the read model and the log per stored event (after each
# fill, and once compaction settled after the last; Cassandra's keyspace is
# flushed first) and runs the many-merchants phases: properties created by
# one `sextant property create --count N` (quick 100, default 1,000, full
# 10,000), Zipf-distributed traffic (`sextant loadgen --properties-zipf`),
# ingest, freshness, reports of random properties, rows written per event.
# The distributed backend runs when the stack is up (its SEXTANT_* variables
# are taken from ./tilt/stack.sh env when not set); otherwise it is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

size=default
extra=()
wait_idle=0
profile=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) size=quick ;;
    --full) size=full ;;
    --wait-idle) wait_idle=1 ;;
    --backends) extra+=(--backends "$2"); shift ;;
    --keep) extra+=(--keep) ;;
    --merge) extra+=(--merge "$2"); shift ;;
    --no-profile) profile=0 ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

case "$size" in
  quick) results=bench/results-quick.json; md=() ;;
  full) results=bench/results-full.json; md=(--md BENCHMARKS.md) ;;
  *) results=bench/results.json; md=(--md BENCHMARKS.md) ;;
esac

mkdir -p bench/out/bin
# The binary, with `sextant loadgen`. Until cmd/sextant/main.go dispatches
# the command itself, an overlay adds the one line (the repository's files
# are not touched).
overlay=()
if ! grep -q 'loadgenCmd' cmd/sextant/main.go; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  sed 's|^\tcase "version":|\tcase "loadgen":\n\t\terr = loadgenCmd(ctx, args[1:], stdout, stderr)\n\tcase "version":|' cmd/sextant/main.go >"$tmp/main.go"
  grep -q loadgenCmd "$tmp/main.go" || { echo "could not add the loadgen command to main.go" >&2; exit 1; }
  printf '{"Replace":{"%s":"%s"}}\n' "$PWD/cmd/sextant/main.go" "$tmp/main.go" >"$tmp/overlay.json"
  overlay=(-overlay "$tmp/overlay.json")
fi
echo "== building sextant and the harness"
go build "${overlay[@]}" -o bench/out/bin/sextant ./cmd/sextant
go build -o bench/out/bin/harness ./bench/harness

if [ -z "${SEXTANT_KAFKA_BROKERS:-}" ] && ./tilt/stack.sh status >/dev/null 2>&1; then
  eval "$(./tilt/stack.sh env)"
fi

busy() { pgrep -f "go test" >/dev/null 2>&1 || pgrep -f "test.sh" >/dev/null 2>&1; }
if [ "$wait_idle" = 1 ]; then
  while busy; do echo "waiting for the running tests to finish…"; sleep 10; done
elif busy; then
  echo "warning: tests are running on this machine; the numbers will be lower than on an idle machine (use --wait-idle)" >&2
fi

if [ "$size" != quick ] && [ "$profile" = 1 ] && command -v perf >/dev/null; then
  extra+=(--profile)
fi

echo "== running the $size benchmark"
bench/out/bin/harness --size "$size" --bin bench/out/bin/sextant --out bench/out --results "$results" "${md[@]}" "${extra[@]}"
echo "== $size benchmark done in $(( $(date +%s) - start ))s: $results"
