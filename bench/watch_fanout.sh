#!/usr/bin/env bash
# Watch fan-out, side by side with etcd, with one command:
#
#     bench/watch_fanout.sh        # ~3 minutes; prints one Markdown table
#
# A 3-member etcd and a 3-member qraft on 127.0.0.1 (TLS on both, as bench/compare.sh). On each
# leader: WATCHERS watchers (default 10,000) over WATCH_KEYS keys (default 100) and CONNS client
# connections (default 100), then PUTS puts (default 5,000, CLIENTS=10 writers) cycling over
# those keys, so each put reaches WATCHERS/WATCH_KEYS watchers. Reported per system: events
# delivered and their rate, put-to-event latency p50/p99 (from the time stamp in each value),
# and the leader's anonymous memory (`RssAnon`, sampled every 100 ms): before the watchers,
# its peak during the run, and that growth per 1,000 watchers; and where the events went: how
# many arrived after the last put was acknowledged (late; the last one how long after), and how
# many had still not arrived when GRACE (default 10s) had passed since then (missing: a member
# that loses events shows here, not as a slow latency). Not part of CI. Knobs (environment):
# WATCHERS, WATCH_KEYS, CONNS, PUTS, CLIENTS, VAL_SIZE (default 256), GRACE, CLIENT_THREADS
# (default 2), SYSTEMS (default "etcd qraft"), WORK, KEEP=1, QRAFT_BIN (a directory with
# prebuilt `qraft`, `qraftctl`, `qraft-bench` built with feature etcd; default: build them).
# Everything started here is killed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WATCHERS=${WATCHERS:-10000}
WATCH_KEYS=${WATCH_KEYS:-100}
CONNS=${CONNS:-100}
PUTS=${PUTS:-5000}
CLIENTS=${CLIENTS:-10}
VAL_SIZE=${VAL_SIZE:-256}
GRACE=${GRACE:-10s}
CLIENT_THREADS=${CLIENT_THREADS:-2}
SYSTEMS=${SYSTEMS:-etcd qraft}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/qraft-fanout.XXXXXX")}
mkdir -p "$WORK"
PIDS=()

# shellcheck source=bench/cluster.sh
source "$(dirname "$0")/cluster.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "== $*" >&2; }

for tool in etcd jq curl; do
    command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install etcd-server jq curl)" >&2; exit 1; }
done
if [[ -n "${QRAFT_BIN:-}" ]]; then
    BIN=$QRAFT_BIN
else
    log "building qraft and qraft-bench (release, feature etcd)"
    (cd "$ROOT" && cargo build --release -q -p qraft-server --features etcd --bin qraft \
        --bin qraft-bench --bin qraftctl)
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
fi
BENCH="$BIN/qraft-bench"

rss_anon_kb() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Samples PID's RssAnon every 100 ms into FILE (one number per line) until killed.
sample_rss() { # pid file
    while kill -0 "$1" 2>/dev/null; do
        rss_anon_kb "$1" >>"$2"
        sleep 0.1
    done
}

wait_ready() { # system endpoints cacert
    local i
    for i in $(seq 1 120); do
        "$BENCH" --target "$1" --endpoints "$2" --cacert "$3" --json --total 1 put \
            >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    return 1
}

# The PID of the member whose endpoint is EP among the comma-separated EPS.
pid_of() { # ep eps
    local i=0 e
    for e in ${2//,/ }; do
        [[ $e == "$1" ]] && { echo "${MEMBER_PIDS[$i]}"; return; }
        i=$((i + 1))
    done
}

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"

run_system() { # system eps cacert
    local system=$1 eps=$2 cacert=$3 leader pid before samples out peak
    wait_ready "$system" "$eps" "$cacert" || { log "$system did not start"; exit 1; }
    if [[ $system == etcd ]]; then
        leader=$(leader_endpoint etcd "$eps" "$cacert")
    else
        leader=$(leader_endpoint qraft "$eps" "$cacert" "$BIN/qraftctl")
    fi
    pid=$(pid_of "$leader" "$eps")
    sleep 2
    before=$(rss_anon_kb "$pid")
    samples="$WORK/rss-$system"
    : >"$samples"
    sample_rss "$pid" "$samples" &
    local sampler=$!
    log "$system: $WATCHERS watchers on $WATCH_KEYS keys over $CONNS connections, $PUTS puts"
    out=$("$BENCH" --target "$system" --endpoints "$leader" --cacert "$cacert" --json \
        --conns "$CONNS" --clients "$CLIENTS" --total "$PUTS" --client-threads "$CLIENT_THREADS" \
        watch --watchers "$WATCHERS" --watch-keys "$WATCH_KEYS" --val-size "$VAL_SIZE" \
        --grace "$GRACE" \
        2>>"$WORK/bench-$system.err") || { log "$system failed: $(tail -3 "$WORK/bench-$system.err")"; }
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    peak=$(sort -n "$samples" | tail -1)
    jq -c --arg system "$system" --argjson before "$before" --argjson peak "${peak:-0}" \
        '. + {system: $system, rss_before_kb: $before, rss_peak_kb: $peak}' \
        <<<"${out:-{\}}" >>"$RESULTS"
}

if [[ " $SYSTEMS " == *" etcd "* ]]; then
    make_ca "$BIN" "$WORK/etcd"
    start_etcd "$WORK/etcd" fanout-etcd "$WORK/etcd/ca"
    ETCD_PIDS=("${MEMBER_PIDS[@]}")
    run_system etcd "$ETCD_EPS" "$WORK/etcd/ca/ca.crt"
    for pid in "${ETCD_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
fi

if [[ " $SYSTEMS " == *" qraft "* ]]; then
    start_qraft "$BIN" "$WORK/qraft" fanout-qraft
    run_system qraft "$QRAFT_EPS" "$WORK/qraft/ca/ca.crt"
fi

echo
echo "Watch fan-out: $WATCHERS watchers, $WATCH_KEYS keys, $CONNS connections, $PUTS puts × $VAL_SIZE B ($CLIENTS writers), 3 members, TLS, on the leader; grace $GRACE; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| | events delivered | events/s | latency p50 ms | p99 ms | max ms | late (last after ms) | missing | errors | RssAnon before MB | peak MB | MB per 1,000 watchers |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
jq -r --argjson w "$WATCHERS" '[.system, .ok, (.qps|floor), .p50_ms, .p99_ms, .max_ms,
    "\(.watch.late) (\(.watch.last_event_after_ms))", .watch.missing, .errors,
    (.rss_before_kb/1024|floor), (.rss_peak_kb/1024|floor),
    ((.rss_peak_kb - .rss_before_kb)/1024/($w/1000)*10|floor/10)]
    | "| " + (map(tostring) | join(" | ")) + " |"' "$RESULTS"
