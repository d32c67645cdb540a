#!/usr/bin/env bash
# Runs the Go micro-benchmarks of the hot paths (the packages' own and
# bench/micro's) and folds the numbers into bench/micro.json and the
# "micro" tables of BENCHMARKS.md. pkg/kafkalog and pkg/cqlstore need the
# stack (their benchmarks use topics and namespaces of their own); they are
# included when SEXTANT_KAFKA_BROKERS / SEXTANT_CQL_HOSTS are set, or the
# stack of ./tilt/stack.sh is up.
# Usage: ./bench/micro.sh [BENCHTIME, default 1s]
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=${1:-1s}
if [ -z "${SEXTANT_KAFKA_BROKERS:-}" ] && ./tilt/stack.sh status >/dev/null 2>&1; then
  eval "$(./tilt/stack.sh env)"
fi
pkgs=(./services/collect ./services/projection ./services/insights ./pkg/block ./pkg/sketch ./pkg/pebblelog ./pkg/pebblestore ./pkg/loadgen ./bench/micro)
[ -n "${SEXTANT_KAFKA_BROKERS:-}" ] && pkgs+=(./pkg/kafkalog)
[ -n "${SEXTANT_CQL_HOSTS:-}" ] && pkgs+=(./pkg/cqlstore)
mkdir -p bench/out/bin
out=bench/out/micro.txt
go test -run '^TestUsersSketchError$' -v ./bench/micro | tee "$out"
go test -run '^$' -bench . -benchmem -benchtime "$benchtime" -count 1 -timeout 30m "${pkgs[@]}" | tee -a "$out"
go build -o bench/out/bin/harness ./bench/harness
bench/out/bin/harness --micro "$out" --micro-json bench/micro.json --md BENCHMARKS.md
echo "micro-benchmarks: bench/micro.json, BENCHMARKS.md"
