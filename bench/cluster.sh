# Starting 3-member etcd and qraft clusters on 127.0.0.1 for the benchmark scripts (sourced by
# bench/compare.sh and bench/ab.sh, not run on its own). Every process started is appended to
# the caller's PIDS array, which the caller's exit trap kills.
#
#   make_ca BINDIR DIR              -> DIR/ca/{ca.crt,ca.key,server.crt,server.key}
#   start_etcd DIR TOKEN [CADIR]    -> ETCD_EPS (comma-separated), MEMBER_PIDS
#   start_qraft BINDIR DIR TOKEN    -> QRAFT_EPS, MEMBER_PIDS, DIR/ca/ca.crt
#   leader_endpoint SYSTEM EPS [CACERT] [CTL]  prints the endpoint of the current leader
#   restart_member I                restarts member I of the last cluster started (its command
#                                   line is kept in MEMBER_CMDS), updating MEMBER_PIDS[I]
#   add_member SYSTEM DIR EP [CACERT] [BINDIR]  adds a fourth member to the last cluster started
#                                   (`member add` through EP, then starts it with
#                                   --initial-cluster-state existing): MEMBER_PIDS[3], NEW_EP
#   renice_members                  every thread of MEMBER_PIDS to NICE (environment; no-op unset)
#   member_pid EP ALL               the pid of the member serving EP among comma-separated ALL
#
# MEMBER_ARGS (environment, word-split) adds flags to every member of both systems, e.g.
# "--snapshot-count 10000". QUOTA (default 8 GiB) is every member's --quota-backend-bytes, for
# both systems alike: at the default 2 GiB a large fill ends in the NOSPACE alarm.
#
#   cleanup                         kills PIDS and removes WORK (unless KEEP=1): the exit trap
#
# Both clusters fsync on commit (etcd's default, qraft's only mode) and keep their data under
# DIR, so both sit on the same disk. qraft always runs TLS (QUIC needs it): server-side TLS
# towards clients, mutual TLS between peers. Given CADIR (from make_ca), etcd runs the same:
# https for clients, https with client-certificate checks between peers.

QUOTA=${QUOTA:-8589934592}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ "${KEEP:-0}" != 1 ]]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}

TAKEN=" "
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        [[ "$TAKEN" == *" $port "* ]] && continue
        [[ -z "$(ss -Htuln "sport = :$port")" ]] || continue
        TAKEN+="$port "
        echo "$port"
        return
    done
}

start_etcd() { # dir token [cadir]
    local w=$1 token=$2 ca=${3:-} scheme=http i cluster="" cps=() pps=() tls=()
    if [[ -n $ca ]]; then
        scheme=https
        tls=(--cert-file "$ca/server.crt" --key-file "$ca/server.key"
            --peer-cert-file "$ca/server.crt" --peer-key-file "$ca/server.key"
            --peer-trusted-ca-file "$ca/ca.crt" --peer-client-cert-auth)
    fi
    mkdir -p "$w"
    for i in 0 1 2; do
        cps+=("$(free_port)")
        pps+=("$(free_port)")
        cluster+="${cluster:+,}e$i=$scheme://127.0.0.1:${pps[$i]}"
    done
    ETCD_EPS=""
    MEMBER_PIDS=()
    MEMBER_CMDS=()
    MEMBER_CLUSTER=$cluster MEMBER_TOKEN=$token MEMBER_SCHEME=$scheme
    MEMBER_TLS=("${tls[@]}")
    for i in 0 1 2; do
        # shellcheck disable=SC2206
        local cmd=(etcd --name "e$i" --data-dir "$w/e$i"
            --listen-client-urls "$scheme://127.0.0.1:${cps[$i]}"
            --advertise-client-urls "$scheme://127.0.0.1:${cps[$i]}"
            --listen-peer-urls "$scheme://127.0.0.1:${pps[$i]}"
            --initial-advertise-peer-urls "$scheme://127.0.0.1:${pps[$i]}"
            --initial-cluster "$cluster" --initial-cluster-state new
            --initial-cluster-token "$token" --quota-backend-bytes "$QUOTA" "${tls[@]}"
            --logger zap --log-outputs stderr --log-level error ${MEMBER_ARGS:-})
        MEMBER_CMDS+=("$(printf '%q ' "${cmd[@]}") >>$(printf '%q' "$w/e$i.log") 2>&1")
        "${cmd[@]}" >"$w/e$i.log" 2>&1 &
        PIDS+=($!)
        MEMBER_PIDS+=($!)
        ETCD_EPS+="${ETCD_EPS:+,}$scheme://127.0.0.1:${cps[$i]}"
    done
}

# A CA made by qraft's own auto-TLS (qraft rebuilds the issuer from ca.key with its own
# parameters, so the CA must come from it), by a throw-away single member, with that member's
# server certificate for 127.0.0.1 (server and client authentication), which etcd can use.
make_ca() { # bindir dir
    local bin=$1 w=$2 i cagen
    mkdir -p "$w/ca"
    "$bin/qraft" --name cagen --data-dir "$w/cagen" \
        --listen-client-urls "https://127.0.0.1:$(free_port)" \
        --listen-peer-urls "https://127.0.0.1:$(free_port)" \
        --listen-metrics-urls "http://127.0.0.1:$(free_port)" >"$w/cagen.log" 2>&1 &
    cagen=$!
    PIDS+=("$cagen")
    for i in $(seq 1 100); do [[ -s "$w/cagen/fixtures/peer/server.key" ]] && break; sleep 0.1; done
    kill "$cagen" 2>/dev/null || true
    wait "$cagen" 2>/dev/null || true
    cp "$w"/cagen/fixtures/peer/{ca.crt,ca.key,server.crt,server.key} "$w/ca/"
    rm -rf "$w/cagen"
}

start_qraft() { # bindir dir token
    local bin=$1 w=$2 token=$3 i cluster="" cps=() pps=()
    # One CA for the three members (auto-TLS makes only the leaves when ca.key exists).
    make_ca "$bin" "$w"
    for i in 0 1 2; do
        cps+=("$(free_port)")
        pps+=("$(free_port)")
        cluster+="${cluster:+,}q$i=https://127.0.0.1:${pps[$i]}"
        for sub in peer client; do
            mkdir -p "$w/q$i/fixtures/$sub"
            cp "$w/ca/ca.crt" "$w/ca/ca.key" "$w/q$i/fixtures/$sub/"
        done
    done
    QRAFT_EPS=""
    MEMBER_PIDS=()
    MEMBER_CMDS=()
    MEMBER_CLUSTER=$cluster MEMBER_TOKEN=$token
    for i in 0 1 2; do
        # shellcheck disable=SC2206
        local cmd=("$bin/qraft" --name "q$i" --data-dir "$w/q$i"
            --listen-client-urls "https://127.0.0.1:${cps[$i]}"
            --listen-peer-urls "https://127.0.0.1:${pps[$i]}"
            --listen-metrics-urls "http://127.0.0.1:$(free_port)"
            --initial-cluster "$cluster" --initial-cluster-state new
            --initial-cluster-token "$token" --quota-backend-bytes "$QUOTA" ${MEMBER_ARGS:-})
        MEMBER_CMDS+=("$(printf '%q ' "${cmd[@]}") >>$(printf '%q' "$w/q$i.log") 2>&1")
        "${cmd[@]}" >"$w/q$i.log" 2>&1 &
        PIDS+=($!)
        MEMBER_PIDS+=($!)
        QRAFT_EPS+="${QRAFT_EPS:+,}https://127.0.0.1:${cps[$i]}"
    done
}

# The leader's endpoint among EPS, asked of each member (etcd through its JSON gateway, qraft
# through `qraftctl endpoint status`); the first endpoint if none answers as leader.
leader_endpoint() { # system eps [cacert] [qraftctl]
    local system=$1 eps=$2 cacert=${3:-} ctl=${4:-} ep status
    for ep in ${eps//,/ }; do
        if [[ $system == etcd ]]; then
            status=$(curl -sf ${cacert:+--cacert "$cacert"} -X POST -d '{}' \
                "$ep/v3/maintenance/status" 2>/dev/null) || continue
            jq -e '.leader == .header.member_id' <<<"$status" >/dev/null && { echo "$ep"; return; }
        else
            status=$("$ctl" --endpoints "$ep" --cacert "$cacert" endpoint status -w json \
                2>/dev/null) || continue
            jq -e '.[0].Status.leader == .[0].Status.header.member_id' <<<"$status" \
                >/dev/null && { echo "$ep"; return; }
        fi
    done
    echo "${eps%%,*}"
}

restart_member() { # i
    local i=$1
    eval "${MEMBER_CMDS[$i]} &"
    PIDS+=($!)
    MEMBER_PIDS[i]=$!
}

add_member() { # system dir ep [cacert] [bindir]
    local sys=$1 w=$2 ep=$3 cacert=${4:-} bin=${5:-} cp pp peer cmd
    cp=$(free_port)
    pp=$(free_port)
    if [[ $sys == etcd ]]; then
        peer="$MEMBER_SCHEME://127.0.0.1:$pp"
        # etcd refuses a voting member until every member has been connected for 5 s (its
        # strict reconfiguration check): retry for a while after a restart.
        for _ in $(seq 1 60); do
            ETCDCTL_API=3 etcdctl --endpoints "$ep" ${cacert:+--cacert "$cacert"} \
                member add e3 --peer-urls "$peer" >/dev/null 2>&1 && break
            sleep 0.5
        done
        # shellcheck disable=SC2206
        cmd=(etcd --name e3 --data-dir "$w/e3"
            --listen-client-urls "$MEMBER_SCHEME://127.0.0.1:$cp"
            --advertise-client-urls "$MEMBER_SCHEME://127.0.0.1:$cp"
            --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer"
            --initial-cluster "$MEMBER_CLUSTER,e3=$peer" --initial-cluster-state existing
            --initial-cluster-token "$MEMBER_TOKEN" --quota-backend-bytes "$QUOTA"
            "${MEMBER_TLS[@]}" --logger zap --log-outputs stderr --log-level error
            ${MEMBER_ARGS:-})
        NEW_EP="$MEMBER_SCHEME://127.0.0.1:$cp"
    else
        peer="https://127.0.0.1:$pp"
        for _ in $(seq 1 60); do
            "$bin/qraftctl" --endpoints "$ep" --cacert "$cacert" member add q3 \
                --peer-urls "$peer" >/dev/null 2>&1 && break
            sleep 0.5
        done
        for sub in peer client; do
            mkdir -p "$w/q3/fixtures/$sub"
            cp "$w/ca/ca.crt" "$w/ca/ca.key" "$w/q3/fixtures/$sub/"
        done
        # shellcheck disable=SC2206
        cmd=("$bin/qraft" --name q3 --data-dir "$w/q3"
            --listen-client-urls "https://127.0.0.1:$cp"
            --listen-peer-urls "$peer"
            --listen-metrics-urls "http://127.0.0.1:$(free_port)"
            --initial-cluster "$MEMBER_CLUSTER,q3=$peer" --initial-cluster-state existing
            --initial-cluster-token "$MEMBER_TOKEN" --quota-backend-bytes "$QUOTA"
            ${MEMBER_ARGS:-})
        NEW_EP="https://127.0.0.1:$cp"
    fi
    MEMBER_CMDS[3]="$(printf '%q ' "${cmd[@]}") >>$(printf '%q' "$w/${sys:0:1}3.log") 2>&1"
    "${cmd[@]}" >"$w/${sys:0:1}3.log" 2>&1 &
    PIDS+=($!)
    MEMBER_PIDS[3]=$!
}

# The members' niceness to NICE (no-op without it): every thread, since Linux sets it per
# thread (threads started later inherit it).
renice_members() {
    [[ -z ${NICE:-} ]] && return 0
    local pid
    sleep 0.5 # the members' threads up
    for pid in "${MEMBER_PIDS[@]}"; do
        # shellcheck disable=SC2046
        renice -n "$NICE" -p $(ls "/proc/$pid/task") >/dev/null 2>&1 || true
    done
}

# The pid of the member serving endpoint EP among the comma-separated ALL.
member_pid() { # ep all
    local i=0 e
    for e in ${2//,/ }; do
        [[ $e == "$1" ]] && { echo "${MEMBER_PIDS[$i]}"; return; }
        i=$((i + 1))
    done
    echo "${MEMBER_PIDS[0]}"
}
