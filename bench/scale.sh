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
#   restart   the follower stopped and started again: time until it answers a status call;
#   join      a fourth member added (`member add`, started with --initial-cluster-state
#             existing): time until its revision reaches the leader's, its peak RssAnon;
#   list      a full paged list of the key space (limit 500, one consistent revision), for at
#             most LIST_S seconds (default 120);
#   watchers  WATCHERS (default 100) watchers on disjoint key ranges during the fill: events
#             received of N.
# "leader change" covers the whole run from the fill on.
# Prints one Markdown table. Knobs (environment): N (default 2000000), V (default 1024),
# SNAP_COUNT (default 10000), AFTER (default SNAP_COUNT + 10000), WATCHERS, SKIP_ETCD=1, SKIP_QRAFT=1,
# ETCD_TLS (1, the default: etcd encrypts as qraft does), WORK, KEEP=1 (keeps data and logs),
# STEPS (default "fill list catch-up restart join": the phases to run, in that order whatever
# the order given; a phase left out shows "–" in its cells). The fill is what the others
# measure against, so keep it: STEPS="fill join" measures a join in a few minutes instead of
# the whole run's ~40. Not part of CI; the default size needs ~3 GiB of disk per member and
# takes a while: try N=200000 first.
set -euo pipefail

BIN=${1:?usage: $0 BINDIR}
N=${N:-2000000}
V=${V:-1024}
SNAP_COUNT=${SNAP_COUNT:-10000}
AFTER=${AFTER:-$((SNAP_COUNT + 10000))}
ETCD_TLS=${ETCD_TLS:-1}
WATCHERS=${WATCHERS:-100}
LIST_S=${LIST_S:-120}
STEPS=${STEPS:-fill list catch-up restart join}
for step in $STEPS; do
    case $step in
    fill | list | catch-up | restart | join) ;;
    *) echo "unknown step '$step' in STEPS (fill list catch-up restart join)" >&2 && exit 2 ;;
    esac
done
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

step() { [[ " $STEPS " == *" $1 "* ]]; }

rss_anon_mb() { # pid (0 when the process is gone)
    local mb
    mb=$(awk '/^RssAnon:/ {printf "%d", $2 / 1024}' "/proc/$1/status" 2>/dev/null)
    echo "${mb:-0}"
}

status_json() { # system endpoint cacert
    if [[ $1 == etcd ]]; then
        curl -sf --max-time 5 ${3:+--cacert "$3"} -X POST -d '{}' "$2/v3/maintenance/status"
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

put() { # target endpoint cacert total key-prefix-offset [put flags]
    "$BENCH" --target "$1" --endpoints "$2" ${3:+--cacert "$3"} --json --clients 256 \
        --conns 32 --total "$4" put --val-size "$V" --key-size 16 \
        --key-space-size $(($4 + $5)) --key-order sequential "${@:6}"
}

stop_member() { # i
    kill "${MEMBER_PIDS[$1]}" 2>/dev/null || true
    wait "${MEMBER_PIDS[$1]}" 2>/dev/null || true
}

# Samples the RssAnon of the leader and of member $2 every 100 ms until member $2's revision
# reaches $3 (15 minutes at most). Sets CAUGHT_S, PEAK_L, PEAK_M. The sampler runs apart from
# the revision checks: a member that has not opened its client port yet keeps a status call
# waiting for seconds (etcd serves clients only after applying the snapshot), and sampling
# between such calls saw only the process's first moments.
wait_caught_up() { # system member-index target-revision endpoint-of-member cacert
    local sys=$1 m=$2 target=$3 ep=$4 cacert=$5 start sampler peaks="$WORK/peaks"
    start=$(date +%s.%N)
    (
        pl=0 pm=0
        while :; do
            now=$(rss_anon_mb "${MEMBER_PIDS[$LEADER]}")
            ((now > pl)) && pl=$now
            now=$(rss_anon_mb "${MEMBER_PIDS[$m]}")
            ((now > pm)) && pm=$now
            echo "$pl $pm" >"$peaks.tmp" && mv "$peaks.tmp" "$peaks"
            sleep 0.1
        done
    ) &
    sampler=$!
    while :; do
        (($(revision "$sys" "$ep" "$cacert") >= target)) && break
        if (($(echo "$(date +%s.%N) - $start > 900" | bc))); then
            log "$sys: member $m did not catch up in 15 minutes"
            break
        fi
        sleep 0.1
    done
    CAUGHT_S=$(echo "$(date +%s.%N) - $start" | bc)
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    read -r PEAK_L PEAK_M <"$peaks" || { PEAK_L=0 PEAK_M=0; }
    rm -f "$peaks"
}

run_system() { # system workdir
    local sys=$1 w=$2 eps cacert="" leader_ep f fill fill_qps fill_errors fill_events target list
    local steady_l steady_f catch ready_s leader_before join sizes start
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
    for LEADER in 0 1 2; do [[ ${all[$LEADER]} == "$leader_ep" ]] && break; done
    f=$(((LEADER + 1) % 3))
    leader_before=$(leader_id "$sys" "$leader_ep" "$cacert")
    fill_qps="–" fill_events="–" list="–" catch="– | – | –" sizes="–" ready_s="–" join="–"
    if step fill; then
        log "$sys: fill $N x $V bytes, $WATCHERS range watchers"
        fill=$(put "$sys" "$leader_ep" "$cacert" "$N" 0 --range-watchers "$WATCHERS")
        fill_qps=$(jq -r '.qps | floor' <<<"$fill")
        # A failed put (e.g. the NOSPACE alarm) must not pass for a fill.
        fill_errors=$(jq -r '.errors // 0' <<<"$fill")
        [[ $fill_errors == 0 ]] || fill_qps+=" ($fill_errors errors)"
        fill_events="$(jq -r '.items // 0' <<<"$fill")/$N"
    fi
    steady_l=$(rss_anon_mb "${MEMBER_PIDS[$LEADER]}")
    steady_f=$(rss_anon_mb "${MEMBER_PIDS[$f]}")
    if step list; then
        log "$sys: paged list (limit 500)"
        # Capped at LIST_S seconds: etcd counts every key of the range for each page (its
        # `count`), so its pages slow down with the key space; the keys listed show how far it got.
        list=$("$BENCH" --target "$sys" --endpoints "$leader_ep" ${cacert:+--cacert "$cacert"} \
            --json --total 100000000 --duration "$LIST_S" list --page-size 500 |
            jq -r '"\(.elapsed_s * 10 | floor / 10) s, \(.items) keys"')
    fi
    if step catch-up; then
        log "$sys: follower $f stopped, $AFTER more writes"
        stop_member "$f"
        put "$sys" "$leader_ep" "$cacert" "$AFTER" "$N" >/dev/null
        target=$(revision "$sys" "$leader_ep" "$cacert")
        restart_member "$f"
        wait_caught_up "$sys" "$f" "$target" "${all[$f]}" "$cacert"
        catch="$(printf '%.1f' "$CAUGHT_S") s | $steady_l → $PEAK_L MB | $steady_f → $PEAK_M MB"
        sizes=$(for i in 0 1 2; do du -sm "$w/${sys:0:1}$i" | cut -f1; done | paste -sd/)
    fi
    if step restart; then
        log "$sys: restart-to-ready"
        stop_member "$f"
        restart_member "$f"
        start=$(date +%s.%N)
        # The client port first (a cheap probe every 20 ms: a status call to a closed port takes
        # seconds to fail), then the first status call answered.
        until (exec 3<>"/dev/tcp/127.0.0.1/${all[$f]##*:}") 2>/dev/null; do sleep 0.02; done
        until status_json "$sys" "${all[$f]}" "$cacert" >/dev/null 2>&1; do sleep 0.05; done
        ready_s="$(printf '%.2f' "$(echo "$(date +%s.%N) - $start" | bc)") s"
    fi
    if step join; then
        log "$sys: a fourth member added"
        target=$(revision "$sys" "$leader_ep" "$cacert")
        add_member "$sys" "$w" "$leader_ep" "$cacert" "$BIN"
        wait_caught_up "$sys" 3 "$target" "$NEW_EP" "$cacert"
        join="$(printf '%.1f' "$CAUGHT_S") s, peak $PEAK_M MB"
    fi
    ROWS+=("| $sys | $fill_qps | $fill_events | $list | $catch | \
$([[ $leader_before == "$(leader_id "$sys" "$leader_ep" "$cacert")" ]] && echo no || echo YES) | \
$sizes | $ready_s | $join |")
    for i in 0 1 2 3; do stop_member "$i"; done
    [[ ${KEEP:-0} == 1 ]] || rm -rf "$w"
}

[[ "${SKIP_ETCD:-0}" == 1 ]] || run_system etcd "$WORK/e"
[[ "${SKIP_QRAFT:-0}" == 1 ]] || run_system qraft "$WORK/q"

echo
echo "3 members each, $N keys x $V bytes, --snapshot-count $SNAP_COUNT, $AFTER writes while a" \
    "follower was down; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg), $(date -u +%FT%RZ)"
echo
echo "| system | fill puts/s | watch events | paged list | catch-up | leader RssAnon steady → peak | follower RssAnon steady → peak | leader change | data dirs (MB) | restart to ready | member added: caught up, RssAnon peak |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
