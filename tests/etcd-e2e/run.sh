#!/usr/bin/env bash
# etcd 3.4's own end-to-end suite (Debian's golang-etcd-server-dev, tests/e2e) against the real
# etcd and against qraft, one test at a time, and a side-by-side table.
#
#   tests/etcd-e2e/run.sh                      every TestCtlV3* test, etcd then qraft
#   tests/etcd-e2e/run.sh 'TestCtlV3Put.*'     a regular expression over the test names
#   tests/etcd-e2e/run.sh --tests FILE         the names listed in FILE (one a line, # comments)
#   tests/etcd-e2e/run.sh --only qraft ...     one side only (no verdict: nothing to compare)
#   options: --timeout SECS (per test, default 150), --out DIR (default target/etcd-e2e/out)
#
# The suite runs with -bin-dir DIR: DIR/etcd is the real /usr/bin/etcd, or a plain symlink to
# qraft (QRAFT_BIN, default target/release/qraft: build it first); DIR/etcdctl is always the
# real etcdctl 3.4. The suite's members use fixed ports from 20000, so never run two at once.
#
# Exit status: 0 when every test that passes on etcd passes on qraft, except those listed in
# tests/etcd-e2e/exceptions.txt (each with its reason; docs/etcd-compatibility.md explains
# them); 1 otherwise; 2 when Go, etcd, etcdctl or the suite's sources are missing — a missing
# oracle fails, it never skips.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
timeout_s=150
only=""
tests_file=""
pattern='^TestCtlV3'
out="$repo/target/etcd-e2e/out"
while [ $# -gt 0 ]; do
  case "$1" in
    --timeout) timeout_s="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --tests) tests_file="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) pattern="$1"; shift ;;
  esac
done
case "$only" in ""|etcd|qraft) ;; *) echo "--only takes etcd or qraft" >&2; exit 2 ;; esac

gopath=/usr/share/gocode
src="$gopath/src/go.etcd.io/etcd"
qraft_bin="${QRAFT_BIN:-$repo/target/release/qraft}"
missing=()
command -v go >/dev/null 2>&1 || missing+=("go (apt-get install golang-go)")
[ -d "$src/tests/e2e" ] || missing+=("$src/tests/e2e (apt-get install golang-etcd-server-dev)")
[ -x /usr/bin/etcd ] || missing+=("/usr/bin/etcd (apt-get install etcd-server)")
[ -x /usr/bin/etcdctl ] || missing+=("/usr/bin/etcdctl (apt-get install etcd-client)")
if [ "$only" != etcd ] && [ ! -x "$qraft_bin" ]; then
  missing+=("$qraft_bin (cargo build --release --workspace --bins)")
fi
if [ ${#missing[@]} -gt 0 ]; then
  printf 'etcd e2e suite: missing %s\n' "${missing[@]}" >&2
  exit 2
fi

# Build the suite once (GOPATH mode, Debian's Go and sources); rebuilt when Go or the sources
# change (the stamp names both).
cache="$repo/target/etcd-e2e"
mkdir -p "$cache"
stamp="$(go version) $(dpkg-query -W -f='${Version}' golang-etcd-server-dev 2>/dev/null || echo unknown)"
if [ ! -x "$cache/e2e.test" ] || [ "$(cat "$cache/e2e.test.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "building etcd's e2e suite ($stamp)" >&2
  GO111MODULE=off GOPATH="$gopath" GOCACHE="$cache/gocache" \
    go test -c -o "$cache/e2e.test" go.etcd.io/etcd/tests/e2e
  echo "$stamp" >"$cache/e2e.test.stamp"
fi

# The suite reads its JWT keys as ../../integration/fixtures/... from its working directory.
work="$cache/work"
mkdir -p "$work/tests/e2e" "$work/integration"
ln -sfn "$src/integration/fixtures" "$work/integration/fixtures"
for side in etcd qraft; do mkdir -p "$cache/bin-$side"; done
ln -sfn /usr/bin/etcd "$cache/bin-etcd/etcd"
ln -sfn /usr/bin/etcdctl "$cache/bin-etcd/etcdctl"
ln -sfn "$qraft_bin" "$cache/bin-qraft/etcd"
ln -sfn /usr/bin/etcdctl "$cache/bin-qraft/etcdctl"

if [ -n "$tests_file" ]; then
  mapfile -t tests < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$tests_file" | grep -v '^$')
else
  mapfile -t tests < <("$cache/e2e.test" -test.list "$pattern")
fi
[ ${#tests[@]} -gt 0 ] || { echo "no test matches" >&2; exit 2; }
declare -A allowed=()
while IFS= read -r line; do
  name="${line%%[[:space:]]*}"
  [ -n "$name" ] && allowed["$name"]=1
done < <(sed -e 's/#.*//' "$here/exceptions.txt" | grep -v '^[[:space:]]*$')

# Kills what a test left behind: the suite starts members on their own pseudo-terminal sessions,
# so a timed-out test's members outlive it. They are found by the bin-dir path they were started
# with (inside this repository's target/), and killed by process id.
reap() {
  local pid cmd
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    cmd="$( { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null || true)"
    case "$cmd" in "$cache/bin-"*) kill -9 "$pid" 2>/dev/null || true ;; esac
  done
}
trap reap EXIT

# run SIDE TEST -> prints PASS, FAIL or TIME and leaves the output in $out/SIDE/TEST.log
run_one() {
  local side="$1" name="$2" log="$out/$1/$2.log" rc=0 start end
  mkdir -p "$out/$side"
  start=$(date +%s)
  (cd "$work/tests/e2e" && exec timeout -k 5 "$timeout_s" "$cache/e2e.test" \
    -test.run "^$name\$" -test.v -test.timeout "$((timeout_s + 60))s" \
    -bin-dir "$cache/bin-$side" -cert-dir "$work/integration/fixtures") >"$log" 2>&1 || rc=$?
  end=$(date +%s)
  reap
  echo "# $side $name rc=$rc $((end - start))s" >>"$log"
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then echo TIME
  elif [ $rc -eq 0 ] && grep -q "^--- PASS: $name " "$log"; then echo PASS
  else echo FAIL; fi
}

table="$out/table.md"
mkdir -p "$out"
rm -f "$out"/etcd/*.log "$out"/qraft/*.log
{
  echo "| test | etcd 3.4.23 | qraft |"
  echo "|---|---|---|"
} >"$table"
cat "$table"
regressions=()
n_etcd=0 n_qraft=0 n_both=0
for name in "${tests[@]}"; do
  e="-" q="-"
  [ "$only" = qraft ] || e="$(run_one etcd "$name")"
  [ "$only" = etcd ] || q="$(run_one qraft "$name")"
  [ "$e" = PASS ] && n_etcd=$((n_etcd + 1))
  [ "$q" = PASS ] && n_qraft=$((n_qraft + 1))
  note=""
  if [ "$e" = PASS ] && [ "$q" != PASS ] && [ "$q" != - ]; then
    if [ -n "${allowed[$name]:-}" ]; then note=" (allowed exception)"
    else regressions+=("$name"); fi
  fi
  [ "$e" = PASS ] && [ "$q" = PASS ] && n_both=$((n_both + 1))
  echo "| $name | $e | $q$note |" | tee -a "$table"
done
summary="${#tests[@]} tests: $n_etcd pass on etcd, $n_qraft pass on qraft, $n_both on both"
echo "$summary" | tee -a "$table"
echo "table: $table; logs: $out/{etcd,qraft}/<test>.log"
if [ ${#regressions[@]} -gt 0 ]; then
  echo "FAILED: pass on etcd, fail on qraft: ${regressions[*]}" >&2
  exit 1
fi
