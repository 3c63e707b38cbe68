#!/usr/bin/env bash
# Production-size benchmark, qraft and etcd side by side, one command:
#
#     bench/scale.sh BINDIR          # BINDIR: qraft, qraftctl and qraft-bench (feature etcd)
#
# Per system, a fresh 3-member cluster on 127.0.0.1 (both with --snapshot-count SNAP_COUNT):
#   fill      N keys x V bytes with 256 clients (fill rate);
#   catch-up  a follower is stopped, AFTER more keys are written (past the snapshot threshold
#             and the catch-up tail, so it can only catch up by snapshot), it is restarted:
#             time until its revision reaches the leader's, peak anonymous memory (RssAnon,
#             sampled every 100 ms) of the leader and the follower against their steady value
#             before, leader changes during it, data directory sizes after;
#   restart   the follower stopped and started again: time until it answers a status call.
# Prints one Markdown table. Knobs (environment): N (default 2000000), V (default 1024),
# SNAP_COUNT (default 10000), AFTER (default SNAP_COUNT + 10000), SKIP_ETCD=1, SKIP_QRAFT=1,
# ETCD_TLS (1, the default: etcd encrypts as qraft does), WORK, KEEP=1. Not part of CI; the
# default size needs ~3 GiB of disk per member and takes a while: try N=200000 first.
# Left for later: a member added by `member add` (same snapshot path), a full paged list and
# watchers during the fill.
set -euo pipefail

BIN=${1:?usage: $0 BINDIR}
N=${N:-2000000}
V=${V:-1024}
SNAP_COUNT=${SNAP_COUNT:-10000}
AFTER=${AFTER:-$((SNAP_COUNT + 10000))}
ETCD_TLS=${ETCD_TLS:-1}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/qraft-scale.XXXXXX")}
mkdir -p "$WORK"
BENCH="$BIN/qraft-bench"
CTL="$BIN/qraftctl"
PIDS=()
export MEMBER_ARGS="--snapshot-count $SNAP_COUNT"
ROWS=()

# shellcheck source=bench/cluster.sh
source "$(dirname "$0")/cluster.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "== $*" >&2; }

rss_anon_mb() { # pid
    awk '/^RssAnon:/ {printf "%d", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo 0
}

status_json() { # system endpoint cacert
    if [[ $1 == etcd ]]; then
        curl -sf ${3:+--cacert "$3"} -X POST -d '{}' "$2/v3/maintenance/status"
    else
        "$CTL" --endpoints "$2" --cacert "$3" endpoint status -w json | jq '.[0].Status'
    fi
}

revision() { # system endpoint cacert
    status_json "$@" 2>/dev/null | jq -r '.header.revision | tonumber' 2>/dev/null || echo 0
}

leader_id() { # system endpoint cacert
    status_json "$@" 2>/dev/null | jq -r '.leader | tostring' 2>/dev/null || echo 0
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

put() { # target endpoint cacert total key-prefix-offset
    "$BENCH" --target "$1" --endpoints "$2" ${3:+--cacert "$3"} --json --clients 256 \
        --conns 32 --total "$4" put --val-size "$V" --key-size 16 \
        --key-space-size $(($4 + $5)) --key-order sequential
}

stop_member() { # i
    kill "${MEMBER_PIDS[$1]}" 2>/dev/null || true
    wait "${MEMBER_PIDS[$1]}" 2>/dev/null || true
}

run_system() { # system workdir
    local sys=$1 w=$2 eps cacert="" leader_ep leader f fill_qps target start now
    local steady_l steady_f peak_l peak_f catch_s ready_s leader_before leader_after sizes
    rm -rf "$w"
    if [[ $sys == etcd ]]; then
        if [[ $ETCD_TLS == 1 ]]; then
            make_ca "$BIN" "$w"
            cacert="$w/ca/ca.crt"
        fi
        start_etcd "$w" qraft-scale "${cacert:+$w/ca}"
        eps=$ETCD_EPS
    else
        start_qraft "$BIN" "$w" qraft-scale
        cacert="$w/ca/ca.crt"
        eps=$QRAFT_EPS
    fi
    wait_ready "$sys" "$eps" "$cacert" || { log "$sys did not serve writes"; return 1; }
    leader_ep=$(leader_endpoint "$sys" "$eps" "$cacert" "$CTL")
    IFS=, read -r -a all <<<"$eps"
    for leader in 0 1 2; do [[ ${all[$leader]} == "$leader_ep" ]] && break; done
    f=$(((leader + 1) % 3))
    log "$sys: fill $N x $V bytes"
    fill_qps=$(put "$sys" "$leader_ep" "$cacert" "$N" 0 | jq -r '.qps | floor')
    steady_l=$(rss_anon_mb "${MEMBER_PIDS[$leader]}")
    steady_f=$(rss_anon_mb "${MEMBER_PIDS[$f]}")
    log "$sys: follower $f stopped, $AFTER more writes"
    stop_member "$f"
    put "$sys" "$leader_ep" "$cacert" "$AFTER" "$N" >/dev/null
    target=$(revision "$sys" "$leader_ep" "$cacert")
    leader_before=$(leader_id "$sys" "$leader_ep" "$cacert")
    restart_member "$f"
    start=$(date +%s.%N)
    peak_l=$steady_l
    peak_f=0
    while :; do
        now=$(rss_anon_mb "${MEMBER_PIDS[$leader]}")
        ((now > peak_l)) && peak_l=$now
        now=$(rss_anon_mb "${MEMBER_PIDS[$f]}")
        ((now > peak_f)) && peak_f=$now
        (($(revision "$sys" "${all[$f]}" "$cacert") >= target)) && break
        if (($(echo "$(date +%s.%N) - $start > 900" | bc))); then
            log "$sys: the follower did not catch up in 15 minutes"
            break
        fi
        sleep 0.1
    done
    catch_s=$(echo "$(date +%s.%N) - $start" | bc)
    leader_after=$(leader_id "$sys" "$leader_ep" "$cacert")
    sizes=$(for i in 0 1 2; do du -sm "$w/${sys:0:1}$i" | cut -f1; done | paste -sd/)
    log "$sys: restart-to-ready"
    stop_member "$f"
    restart_member "$f"
    start=$(date +%s.%N)
    until status_json "$sys" "${all[$f]}" "$cacert" >/dev/null 2>&1; do sleep 0.05; done
    ready_s=$(echo "$(date +%s.%N) - $start" | bc)
    ROWS+=("| $sys | $fill_qps | $(printf '%.1f' "$catch_s") s | $steady_l → $peak_l MB | \
$steady_f → $peak_f MB | $([[ $leader_before == "$leader_after" ]] && echo no || echo YES) | \
$sizes | $(printf '%.2f' "$ready_s") s |")
    for i in 0 1 2; do stop_member "$i"; done
    rm -rf "$w"
}

[[ "${SKIP_ETCD:-0}" == 1 ]] || run_system etcd "$WORK/e"
[[ "${SKIP_QRAFT:-0}" == 1 ]] || run_system qraft "$WORK/q"

echo
echo "3 members each, $N keys x $V bytes, --snapshot-count $SNAP_COUNT, $AFTER writes while a" \
    "follower was down; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg), $(date -u +%FT%RZ)"
echo
echo "| system | fill puts/s | catch-up | leader RssAnon steady → peak | follower RssAnon steady → peak | leader change | data dirs (MB) | restart to ready |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
