#!/usr/bin/env bash
# Interleaved A/B of put throughput and latency: etcd and one or more qraft builds, 3 members
# each on 127.0.0.1, taking turns so that a change in the machine's load hits all of them alike.
#
#     bench/ab.sh before=/path/to/bindir after=/work/targets/x/release      # NAME=DIR of `qraft`
#     bench/ab.sh quic=/path/to/bindir grpc-grpc=/path/to/bindir          # both client paths
#
# A NAME ending in `-grpc` drives that qraft through etcd's gRPC API on its client URL (the
# etcd client that drives etcd); other names use qraft's own QUIC client.
#
# A DIR holds a `qraft` binary (and, for the first one, `qraft-bench` built with feature `etcd`,
# which drives every system, and `qraftctl`). Per repetition and system: a fresh cluster (etcd: one cluster for
# the whole run), then `put` with each client count of CLIENTS. Each row records qps, average,
# p50 and p99 latency, the 1-minute load average, and the members' CPU time and context switches
# per put (summed over the three processes, from /proc). Prints one table of means at the end;
# the raw rows stay in $WORK/ab.jsonl. Knobs: REPS (default 3), CLIENTS (default "1 64 256"),
# PRELOAD (keys of 256 bytes put with 256 clients into each fresh cluster before the rows,
# default 0; etcd's cluster is loaded once), ENDPOINTS (`leader`, the default: every client
# talks to the leader, found after the start; `all`: the three endpoints — etcd's client then
# balances over them, qraft's uses the first), ETCD_TLS (1, the default: etcd encrypts like
# qraft — https for clients, mutual TLS between peers; 0: plain http), PUTS (puts per client
# in a row, default 60; the 1-client row does 5 × PUTS), NICE (e.g. -15: the members and the
# load tool run at that niceness, so other work on the machine disturbs them less; needs
# root), SKIP_ETCD=1, KEEP=1, WORK (default a fresh dir under $TMPDIR). The leader's own CPU
# per put is a column of its own (the members' sum includes the followers'). Not part of CI.
set -euo pipefail

REPS=${REPS:-3}
PRELOAD=${PRELOAD:-0}
CLIENTS=${CLIENTS:-1 64 256}
PUTS=${PUTS:-60}
NICE=${NICE:-}
ENDPOINTS=${ENDPOINTS:-leader}
ETCD_TLS=${ETCD_TLS:-1}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/qraft-ab.XXXXXX")}
mkdir -p "$WORK"
OUT="$WORK/ab.jsonl"
: >"$OUT"
declare -a SYSTEMS DIRS
for arg in "$@"; do
    SYSTEMS+=("${arg%%=*}")
    DIRS+=("${arg#*=}")
done
((${#SYSTEMS[@]})) || { echo "usage: $0 NAME=BINDIR..." >&2; exit 2; }
BENCH="${DIRS[0]}/qraft-bench"
NICE_CMD=()
[[ -n $NICE ]] && NICE_CMD=(nice -n "$NICE")
CTL="${DIRS[0]}/qraftctl"
PIDS=()

# shellcheck source=bench/cluster.sh
source "$(dirname "$0")/cluster.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_members() {
    local pid
    for pid in "${MEMBER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${MEMBER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}

# CPU ticks and context switches summed over the members' threads: "ticks switches".
usage() {
    local pid ticks=0 switches=0 t s
    for pid in "$@"; do
        t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        s=$(cat /proc/"$pid"/task/*/status 2>/dev/null |
            awk '/ctxt_switches/ {n += $2} END {print n + 0}')
        ticks=$((ticks + t))
        switches=$((switches + s))
    done
    echo "$ticks $switches"
}

wait_ready() { # target endpoints [cacert]
    local i
    for i in $(seq 1 120); do
        if "$BENCH" --target "$1" --endpoints "$2" ${3:+--cacert "$3"} --json --total 1 put \
            2>/dev/null | jq -e '.errors == 0' >/dev/null; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}

preload() { # target endpoints cacert-or-empty
    ((PRELOAD > 0)) || return 0
    "$BENCH" --target "$1" --endpoints "$2" ${3:+--cacert "$3"} --json --clients 256 --conns 32 \
        --total "$PRELOAD" put --val-size 256 --key-size 8 --key-space-size "$PRELOAD" \
        --key-order sequential | jq -c '{preload: .ok, qps, errors}' >&2
}

run_puts() { # system rep target endpoints cacert-or-empty leader-pid
    local system=$1 rep=$2 target=$3 eps=$4 cacert=$5 leader=$6 n total before after result
    local lbefore lafter
    for n in $CLIENTS; do
        total=$((n == 1 ? 5 * PUTS : n * PUTS))
        before=$(usage "${MEMBER_PIDS[@]}")
        lbefore=$(usage "$leader")
        result=$("${NICE_CMD[@]}" "$BENCH" --target "$target" --endpoints "$eps" ${cacert:+--cacert "$cacert"} \
            --json --clients "$n" --conns $((n > 8 ? n / 8 : 1)) --total "$total" \
            put --val-size 256 --key-size 8 --key-space-size 100000)
        after=$(usage "${MEMBER_PIDS[@]}")
        lafter=$(usage "$leader")
        jq -c --arg sys "$system" --argjson rep "$rep" --argjson clients "$n" \
            --argjson load "$(cut -d' ' -f1 /proc/loadavg)" \
            --argjson total "$total" --arg before "$before" --arg after "$after" \
            --arg lbefore "$lbefore" --arg lafter "$lafter" \
            --argjson hz "$(getconf CLK_TCK)" '
            ($before | split(" ") | map(tonumber)) as $b |
            ($after | split(" ") | map(tonumber)) as $a |
            ($lbefore | split(" ") | map(tonumber)) as $lb |
            ($lafter | split(" ") | map(tonumber)) as $la |
            {sys: $sys, rep: $rep, clients: $clients, load: $load, qps, avg_ms, p50_ms,
             p99_ms, errors,
             cpu_ms_per_put: (($a[0] - $b[0]) * 1000 / $hz / $total),
             leader_cpu_ms_per_put: (($la[0] - $lb[0]) * 1000 / $hz / $total),
             switches_per_put: (($a[1] - $b[1]) / $total)}' <<<"$result" | tee -a "$OUT" >&2
    done
}

if [[ "${SKIP_ETCD:-0}" != 1 ]]; then
    ETCD_CA=""
    if [[ $ETCD_TLS == 1 ]]; then
        make_ca "${DIRS[0]}" "$WORK/etcd"
        ETCD_CA="$WORK/etcd/ca/ca.crt"
    fi
    start_etcd "$WORK/etcd" qraft-ab "${ETCD_CA:+$WORK/etcd/ca}"
    ETCD_MEMBERS=("${MEMBER_PIDS[@]}")
    renice_members
    wait_ready etcd "$ETCD_EPS" "$ETCD_CA" || { tail -n 5 "$WORK"/etcd/e*.log >&2; exit 1; }
    ETCD_ALL=$ETCD_EPS
    [[ $ENDPOINTS == leader ]] && ETCD_EPS=$(leader_endpoint etcd "$ETCD_EPS" "$ETCD_CA")
    ETCD_LEADER=$(member_pid "${ETCD_EPS%%,*}" "$ETCD_ALL")
    preload etcd "$ETCD_EPS" "$ETCD_CA"
fi
for rep in $(seq 1 "$REPS"); do
    if [[ "${SKIP_ETCD:-0}" != 1 ]]; then
        MEMBER_PIDS=("${ETCD_MEMBERS[@]}")
        run_puts etcd "$rep" etcd "$ETCD_EPS" "$ETCD_CA" "$ETCD_LEADER"
    fi
    for i in "${!SYSTEMS[@]}"; do
        w="$WORK/${SYSTEMS[$i]}"
        rm -rf "$w"
        start_qraft "${DIRS[$i]}" "$w" qraft-ab
        renice_members
        if wait_ready qraft "$QRAFT_EPS" "$w/ca/ca.crt"; then
            all=$QRAFT_EPS
            [[ $ENDPOINTS == leader ]] &&
                QRAFT_EPS=$(leader_endpoint qraft "$QRAFT_EPS" "$w/ca/ca.crt" "$CTL")
            leader=$(member_pid "${QRAFT_EPS%%,*}" "$all")
            preload qraft "$QRAFT_EPS" "$w/ca/ca.crt"
            target=qraft
            [[ ${SYSTEMS[$i]} == *-grpc ]] && target=etcd
            run_puts "${SYSTEMS[$i]}" "$rep" "$target" "$QRAFT_EPS" "$w/ca/ca.crt" "$leader"
        else
            echo "${SYSTEMS[$i]} did not serve writes" >&2
        fi
        stop_members
        rm -rf "$w"
    done
done

echo
echo "put, 3 members each, $(nproc) cores, $(date -u +%FT%RZ), REPS=$REPS, ENDPOINTS=$ENDPOINTS, ETCD_TLS=$ETCD_TLS (means; qps [min-max])"
echo
jq -rs '
  def r2: (. * 100 | round) / 100;
  def mean(f): (map(f) | add / length);
  group_by(.clients)[] | . as $c |
  (map(select(.sys == "etcd" and .qps > 0)) | if length > 0 then mean(.qps) else null end) as $etcd |
  group_by(.sys)[] |
  "| \(.[0].clients) clients | \(.[0].sys) | \(mean(.qps) | round) [\(map(.qps) | min | round)-\(map(.qps) | max | round)] | \(if $etcd then (mean(.qps) / $etcd | r2 | tostring) + "x" else "" end) | \(mean(.avg_ms) | r2) | \(mean(.p50_ms) | r2) | \(map(.p99_ms | r2 | tostring) | join("/")) | \(mean(.cpu_ms_per_put) | r2) | \(mean(.leader_cpu_ms_per_put) * 1000 | round) | \(mean(.switches_per_put) | r2) | \(map(.load | tostring) | join("/")) |"
' "$OUT" | sed '1i | clients | system | qps [min-max] | /etcd | avg ms | p50 ms | p99 ms (each rep) | CPU ms/put | leader CPU µs/put | ctx switches/put | load (each rep) |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|'
