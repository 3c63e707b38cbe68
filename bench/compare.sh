#!/usr/bin/env bash
# Side-by-side benchmark of qraft and etcd on this machine, with one command:
#
#     bench/compare.sh            # ~15 minutes; prints one Markdown table
#
# Starts a 3-member etcd and a 3-member qraft on 127.0.0.1 (free ports, data directories under
# one temporary directory on the same disk, both fsync on commit: etcd's default, qraft's only
# mode), runs the same qraft-bench workloads against both, and prints the results with the
# qraft/etcd ratios. qraft is measured on both of its client paths, each on a fresh cluster:
# its own QUIC protocol (`qraft`) and etcd's gRPC API on the same client URL, driven by the
# same etcd client (`etcd-client`, tonic) that drives etcd (`qraft-grpc`). Not part of CI. Knobs (environment): SCALE (multiplies every total, default
# 1), WORK (where data goes, default a fresh dir under $TMPDIR), KEEP=1 (keep WORK), SKIP_QRAFT=1
# SKIP_GRPC=1 or SKIP_ETCD=1 (leave one side out), QRAFT_BIN (a directory with prebuilt `qraft` and
# `qraft-bench`, feature etcd; default: build them), ENDPOINTS (`leader`, the default: the
# clients of both systems talk to the leader, found after the start — the path the latency
# targets are about; `all`: the three endpoints, which etcd's client balances over and qraft's
# client uses the first of), ETCD_TLS (1, the default: etcd encrypts like qraft always does —
# https for clients, mutual TLS between peers, certificates from one CA; 0: plain http).
# REPS (default 1): repetitions, interleaved — each runs etcd's suite, then qraft's QUIC suite,
# then qraft's gRPC suite, each on a fresh cluster, so a change in the machine's load hits all
# three alike; the table shows the median qps and p99 over the repetitions. NICE (e.g. -15,
# needs root): the members and the load tool run at that niceness, so other work on the
# machine disturbs them less.
# Everything started here is killed on exit.
# The load column is the 1-minute load average when each row finished (each repetition's, for
# the system's run); "leader µs/req" is the CPU time (user + system, from /proc) the member the
# clients talk to spent per request, on the rows with one endpoint.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCALE=${SCALE:-1}
REPS=${REPS:-1}
REP=1
NICE=${NICE:-}
NICE_CMD=()
[[ -n $NICE ]] && NICE_CMD=(nice -n "$NICE")
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/qraft-compare.XXXXXX")}
mkdir -p "$WORK"
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
PIDS=()

# shellcheck source=bench/cluster.sh
source "$(dirname "$0")/cluster.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "== $*" >&2; }

# --- prerequisites -------------------------------------------------------------------------
need_pkgs=()
command -v etcd >/dev/null || need_pkgs+=(etcd-server)
command -v jq >/dev/null || need_pkgs+=(jq)
command -v ss >/dev/null || need_pkgs+=(iproute2)
command -v curl >/dev/null || need_pkgs+=(curl)
if ((${#need_pkgs[@]})); then
    log "installing ${need_pkgs[*]}"
    SUDO=$([[ $(id -u) == 0 ]] && echo "" || echo sudo)
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
# Debian's etcd-server starts a system etcd on 2379/2380; ours use other ports, so it may stay.

if [[ -n "${QRAFT_BIN:-}" ]]; then
    BIN=$QRAFT_BIN # a directory with prebuilt `qraft`, `qraftctl` and `qraft-bench` (feature etcd)
else
    log "building qraft and qraft-bench (release, feature etcd)"
    (cd "$ROOT" && cargo build --release -q -p qraft-server --features etcd --bin qraft \
        --bin qraft-bench --bin qraftctl)
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
fi
BENCH="$BIN/qraft-bench"

wait_ready() { # system endpoints
    local i
    for i in $(seq 1 120); do
        if "$BENCH" --target "$1" --endpoints "$2" ${CACERT:+--cacert "$CACERT"} --json \
            --total 1 put >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}

# --- workloads -----------------------------------------------------------------------------
# CPU ticks (user + system) of one process.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# bench SYSTEM ENDPOINTS ROW ARGS... : runs one workload and appends its JSON with the row name.
# A mixed run's JSON (writes, with the reads nested) becomes two rows. With one endpoint, the
# CPU per request of LEADER_PID (the member behind it) is recorded too.
bench() {
    local system=$1 eps=$2 row=$3 out target=$1 t0=0 t1=0 pid=""
    shift 3
    [[ $system == qraft-grpc ]] && target=etcd
    [[ $eps != *,* ]] && pid=${LEADER_PID:-}
    log "$system: $row"
    [[ -n $pid ]] && t0=$(ticks "$pid")
    if out=$("${NICE_CMD[@]}" "$BENCH" --target "$target" --endpoints "$eps" \
        ${CACERT:+--cacert "$CACERT"} --json "$@" 2>>"$WORK/bench-$system.err"); then
        [[ -n $pid ]] && t1=$(ticks "$pid")
        jq -c --arg row "$row" --arg system "$system" --argjson rep "$REP" \
            --argjson load "$(cut -d' ' -f1 /proc/loadavg)" --argjson ticks "$((t1 - t0))" \
            --argjson measured "$([[ -n $pid ]] && echo true || echo false)" \
            --argjson hz "$(getconf CLK_TCK)" '
            (if $measured and (.ok // 0) > 0 then
                {leader_us: ($ticks * 1000000 / $hz / (.ok + (.reads.ok // 0)))}
             else {} end) as $cpu |
            if .reads then
                (del(.reads) + {row: "\($row): writes"} + $cpu),
                (.reads + {row: "\($row): reads"})
            else . + {row: $row} + $cpu end | . + {system: $system, load: $load, rep: $rep}' \
            <<<"$out" >>"$RESULTS"
    else
        log "$system: $row failed (see $WORK/bench-$system.err)"
    fi
}

total() { awk -v n="$1" -v s="$SCALE" 'BEGIN { printf "%d", (n * s < 1 ? 1 : n * s) }'; }

members_footprint() { # system pid...
    local system=$1 i=0 pid rss
    shift
    for pid in "$@"; do
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        jq -nc --arg system "$system" --arg row "RSS member $i (MiB)" --argjson v "$rss" \
            --argjson rep "$REP" '{system: $system, row: $row, value: ($v / 1024), rep: $rep}' \
            >>"$RESULTS"
        i=$((i + 1))
    done
    du -sb "$WORK/$system" | awk '{print $1}' | jq -c --arg system "$system" \
        --argjson rep "$REP" \
        '{system: $system, row: "data dirs, 3 members (MiB)", value: (. / 1048576), rep: $rep}' \
        >>"$RESULTS"
}

run_suite() { # system endpoints all-endpoints pid...
    local system=$1 eps=$2 all=$3
    shift 3
    local load=(--key-size 8 --key-space-size 100000)
    bench "$system" "$eps" "load 100k keys x 256 B (256 clients)" --clients 256 --conns 32 \
        --total 100000 put "${load[@]}" --key-order sequential --val-size 256
    sleep 2
    members_footprint "$system" "$@"
    bench "$system" "$eps" "put, 1 client" --clients 1 --total "$(total 1000)" \
        put "${load[@]}" --val-size 256
    bench "$system" "$eps" "put, 16 clients" --clients 16 --conns 2 --total "$(total 8000)" \
        put "${load[@]}" --val-size 256
    bench "$system" "$eps" "put, 64 clients" --clients 64 --conns 8 --total "$(total 20000)" \
        put "${load[@]}" --val-size 256
    bench "$system" "$eps" "put, 256 clients" --clients 256 --conns 32 --total "$(total 30000)" \
        put "${load[@]}" --val-size 256
    bench "$system" "$eps" "range linearizable, 64 clients" --clients 64 --conns 8 \
        --total "$(total 30000)" range "${load[@]}" --consistency l
    bench "$system" "$eps" "range serializable, 64 clients" --clients 64 --conns 8 \
        --total "$(total 40000)" range "${load[@]}" --consistency s
    bench "$system" "$eps" "txn-put, 64 clients" --clients 64 --conns 8 \
        --total "$(total 10000)" txn-put "${load[@]}" --val-size 256
    bench "$system" "$eps" "watch: 100 watchers x 1000 puts (event latency)" --clients 4 \
        --conns 4 --total "$(total 1000)" watch --watchers 100 --val-size 256
    bench "$system" "$eps" "lease keep-alive, 64 clients" --clients 64 --conns 8 \
        --total "$(total 20000)" lease-keepalive
    bench "$system" "$eps" "put 1 KiB, 64 clients" --clients 64 --conns 8 \
        --total "$(total 20000)" put "${load[@]}" --val-size 1024
    bench "$system" "$eps" "mixed 32 writers + 32 linearizable readers" --conns 8 \
        --total "$(total 40000)" mixed --writers 32 --readers 32 "${load[@]}" --val-size 256
    # Clients spread over the three members (followers forward writes). qraft's own client
    # keeps to its first endpoint, so this row is for the gRPC paths.
    if [[ $system != qraft ]]; then
        bench "$system" "$all" "put, 64 clients, all members" --clients 64 --conns 8 \
            --total "$(total 20000)" put "${load[@]}" --val-size 256
        bench "$system" "$all" "mixed 32 + 32, all members" --conns 8 \
            --total "$(total 40000)" mixed --writers 32 --readers 32 "${load[@]}" --val-size 256
    fi
}

ENDPOINTS=${ENDPOINTS:-leader}
ETCD_TLS=${ETCD_TLS:-1}
stop_members() {
    local pid
    for pid in "${MEMBER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${MEMBER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
run_etcd() {
    local all_eps
    log "rep $REP: starting 3-member etcd $(etcd --version | head -1) (TLS: $ETCD_TLS)"
    rm -rf "$WORK/etcd"
    if [[ $ETCD_TLS == 1 ]]; then
        make_ca "$BIN" "$WORK/etcd"
        CACERT="$WORK/etcd/ca/ca.crt"
    fi
    start_etcd "$WORK/etcd" qraft-compare "${CACERT:+$WORK/etcd/ca}"
    renice_members
    wait_ready etcd "$ETCD_EPS" || { tail -n 5 "$WORK"/etcd/e*.log >&2; exit 1; }
    all_eps=$ETCD_EPS
    [[ $ENDPOINTS == leader ]] && ETCD_EPS=$(leader_endpoint etcd "$ETCD_EPS" "${CACERT:-}")
    LEADER_PID=$(member_pid "${ETCD_EPS%%,*}" "$all_eps")
    log "etcd endpoints: $ETCD_EPS"
    run_suite etcd "$ETCD_EPS" "$all_eps" "${MEMBER_PIDS[@]}"
    stop_members
    unset CACERT
}
run_qraft() { # system (qraft: QUIC, qraft-grpc: etcd's gRPC API)
    local system=$1 all_eps
    log "rep $REP: starting 3-member qraft for $system"
    rm -rf "${WORK:?}/$system"
    start_qraft "$BIN" "$WORK/$system" "$system"
    renice_members
    CACERT="$WORK/$system/ca/ca.crt"
    if wait_ready qraft "$QRAFT_EPS"; then
        all_eps=$QRAFT_EPS
        [[ $ENDPOINTS == leader ]] &&
            QRAFT_EPS=$(leader_endpoint qraft "$QRAFT_EPS" "$CACERT" "$BIN/qraftctl")
        LEADER_PID=$(member_pid "${QRAFT_EPS%%,*}" "$all_eps")
        log "qraft endpoints: $QRAFT_EPS"
        run_suite "$system" "$QRAFT_EPS" "$all_eps" "${MEMBER_PIDS[@]}"
    else
        log "qraft did not serve writes; its rows stay empty"
        tail -n 5 "$WORK/$system"/q*.log >&2 || true
    fi
    stop_members
    unset CACERT
}
for REP in $(seq 1 "$REPS"); do
    [[ "${SKIP_ETCD:-0}" == 1 ]] || run_etcd
    [[ "${SKIP_QRAFT:-0}" == 1 ]] || run_qraft qraft
    [[ "${SKIP_GRPC:-0}" == 1 ]] || run_qraft qraft-grpc
done

# --- the table -----------------------------------------------------------------------------
echo
echo "qraft (QUIC and gRPC paths) vs etcd, 3 members each on 127.0.0.1, $(nproc) cores, $(date -u +%FT%RZ), SCALE=$SCALE, REPS=$REPS, ENDPOINTS=$ENDPOINTS, ETCD_TLS=$ETCD_TLS, NICE=${NICE:-0} (medians over the repetitions)"
echo
jq -rs '
  def f: if . == null then "n/a" elif . >= 100 then (. | round | tostring)
         else ((. * 100 | round) / 100 | tostring) end;
  def ratio(q; e): if q == null or e == null or e == 0 then "n/a"
         else ((q / e * 100 | round) / 100 | tostring) + "x" end;
  def median(f): map(f | select(. != null)) | sort
         | if length == 0 then null else .[(length - 1) / 2 | floor] end;
  def loads: if . == null then "-" else map(.load | tostring) | join(", ") end;
  def errs: if . == null then "-" else map(.errors // 0) | add | tostring end;
  (reduce .[] as $r ({order: [], rows: {}};
      (if .rows[$r.row] == null then .order += [$r.row] else . end)
      | .rows[$r.row][$r.system] += [$r])) as $t |
  "| workload | etcd qps | qraft QUIC qps | ×etcd | qraft gRPC qps | ×etcd | p99 ms etcd / QUIC / gRPC | leader µs/req etcd / QUIC / gRPC | errors | load etcd / QUIC / gRPC (each rep) |",
  "|---|---:|---:|---:|---:|---:|---|---|---|---|",
  ($t.order[] as $row | $t.rows[$row] as $x |
    ($x.etcd // []) as $e | ($x.qraft // []) as $q | ($x["qraft-grpc"] // []) as $g |
    if ($e + $q + $g | map(.value) | any(. != null)) then
      "| \($row) | \($e | median(.value) | f) | \($q | median(.value) | f) | \(ratio($q | median(.value); $e | median(.value))) | \($g | median(.value) | f) | \(ratio($g | median(.value); $e | median(.value))) | | | | |"
    else
      "| \($row) | \($e | median(.qps) | f) | \($q | median(.qps) | f) | \(ratio($q | median(.qps); $e | median(.qps))) | \($g | median(.qps) | f) | \(ratio($g | median(.qps); $e | median(.qps))) | \($e | median(.p99_ms) | f) / \($q | median(.p99_ms) | f) / \($g | median(.p99_ms) | f) | \($e | median(.leader_us) | f) / \($q | median(.leader_us) | f) / \($g | median(.leader_us) | f) | \($x.etcd | errs)/\($x.qraft | errs)/\($x["qraft-grpc"] | errs) | \($x.etcd | loads) / \($x.qraft | loads) / \($x["qraft-grpc"] | loads) |"
    end)
' "$RESULTS"
