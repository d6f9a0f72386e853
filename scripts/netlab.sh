#!/usr/bin/env bash
# A network lab on one machine (needs root): an aggregator host and agent hosts as Linux
# network namespaces, each joined by a veth pair to a bridge that lives in its own
# namespace, with addresses in a private subnet that exists only inside these namespaces
# (default 10.77.0.0/24: aggregator .1, agent i .(10+i)). Each agent's link can be shaped
# with tc netem (delay, loss, rate) and cut for a while. Nothing is routed to or from the
# root namespace: traffic stays inside the lab.
#
#   netlab.sh up N | up NAME...     make the hosts "agg" and agents a1..aN (or the NAMEs)
#   netlab.sh shape HOST PROFILE    PROFILE: none | wan (80 ms RTT, 1% loss, 50 Mbit/s) |
#                                   bad (300 ms RTT, 5% loss, 5 Mbit/s); half the RTT, and the
#                                   loss, in each direction (see shape() for kernels without netem)
#   netlab.sh cut HOST SECONDS      the host's link goes down for SECONDS, then up again
#   netlab.sh addr HOST             the host's address
#   netlab.sh exec HOST CMD...      run CMD inside the host (exec: the pid is CMD's own)
#   netlab.sh run PROFILE DIR [--cut HOST]
#                                   a whole round in a prepared federation directory DIR
#                                   (aggregator.yaml, agent-NAME.yaml, listening on the lab's
#                                   aggregator address): hosts for its agents, every link
#                                   shaped with PROFILE, daemons started inside the hosts,
#                                   optionally one link cut for 20 s once that agent's upload
#                                   has begun; prints the report's upload table; always tears down
#   netlab.sh down                  kill every process inside the lab's namespaces, delete them
#
# Environment: NETLAB_PREFIX (namespace prefix, default fmlab), NETLAB_NET (first three
# octets, default 10.77.0), FEDMERGE (the binary for `run`, default .build/debug/fedmerge).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX=${NETLAB_PREFIX:-fmlab}
RELAY_PORT=7999   # the delay relay's port inside an agent host (kernels without netem)
NET=${NETLAB_NET:-10.77.0}
STATE=/run/netlab-$PREFIX
BRIDGE_NS=$PREFIX-net

die() { echo "netlab: $*" >&2; exit 2; }

[[ $(id -u) == 0 ]] || die "needs root (network namespaces)"
command -v ip >/dev/null || die "needs iproute2 (ip, tc)"
[[ $PREFIX =~ ^[a-z][a-z0-9]{0,7}$ ]] || die "NETLAB_PREFIX '$PREFIX' must be 1-8 lowercase letters/digits"
[[ $NET =~ ^10\.[0-9]+\.[0-9]+$ ]] || die "NETLAB_NET '$NET' must be a 10.x.y private prefix"

ns_of() { echo "$PREFIX-$1"; }

# The host's index (0 for agg), from the state file the last `up` wrote.
index_of() {
    local line
    line=$(grep -E "^$1 " "$STATE/hosts" 2>/dev/null) || die "no host '$1' in the lab (hosts: $(cut -d' ' -f1 "$STATE/hosts" 2>/dev/null | tr '\n' ' '))"
    echo "${line#* }"
}

addr_of() {
    local i
    i=$(index_of "$1")
    if [[ $i == 0 ]]; then echo "$NET.1"; else echo "$NET.$((10 + i))"; fi
}

down() {
    local ns
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^$PREFIX-" || true); do
        # Only processes inside our own namespaces: the lab's daemons.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$STATE"
}

add_host() {
    local name=$1 i=$2 ns addr
    [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,15}$ ]] || die "host name '$name' is not 1-16 letters, digits, _ or -"
    ns=$(ns_of "$name")
    if [[ $i == 0 ]]; then addr=$NET.1; else addr=$NET.$((10 + i)); fi
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # veth: "v<i>" on the bridge side, eth0 inside the host.
    ip -n "$BRIDGE_NS" link add "v$i" type veth peer name eth0 netns "$ns"
    ip -n "$BRIDGE_NS" link set "v$i" master br0 up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
    echo "$name $i" >> "$STATE/hosts"
}

up() {
    [[ $# -ge 1 ]] || die "up N | up NAME..."
    local names=()
    if [[ $# == 1 && $1 =~ ^[0-9]+$ ]]; then
        (( $1 >= 1 && $1 <= 200 )) || die "agent count $1 is not 1-200"
        for ((i = 1; i <= $1; i++)); do names+=("a$i"); done
    else
        names=("$@")
    fi
    down
    trap 'down; exit 1' ERR
    mkdir -p "$STATE"
    : > "$STATE/hosts"
    ip netns add "$BRIDGE_NS"
    ip -n "$BRIDGE_NS" link set lo up
    ip -n "$BRIDGE_NS" link add br0 type bridge
    ip -n "$BRIDGE_NS" link set br0 up
    add_host agg 0
    local i=1 name
    for name in "${names[@]}"; do
        [[ $name != agg ]] || die "'agg' is the aggregator's host name"
        add_host "$name" "$i"
        i=$((i + 1))
    done
    trap - ERR
    echo "netlab: up: agg=$NET.1 $(for n in "${names[@]}"; do echo -n "$n=$(addr_of "$n") "; done)"
}

# Each direction is shaped where it leaves a device: the host's eth0 (upload) and its bridge
# port (download). With sch_netem in the kernel, one netem qdisc per direction (half the RTT,
# the loss, the rate). Without it (some VM kernels ship no netem), rate by tbf, loss by an
# iptables `statistic` DROP in the host (OUTPUT and INPUT), and delay by a relay in the host
# (scripts/netlab_delay.py): the host's TCP connections to the aggregator host are redirected
# to it (nat OUTPUT REDIRECT, except packets with the relay's own mark 0x77) and it forwards each chunk
# half the RTT after it arrived, each way. The script says which on stderr.
shape() {
    [[ $# == 2 ]] || die "shape HOST PROFILE"
    local host=$1 profile=$2 i ns delay loss rate
    i=$(index_of "$host")
    ns=$(ns_of "$host")
    case $profile in
        none) delay=""; loss=""; rate="" ;;
        wan) delay=40ms; loss=0.01; rate=50mbit ;;
        bad) delay=150ms; loss=0.05; rate=5mbit ;;
        *) die "unknown profile '$profile' (none, wan, bad)" ;;
    esac
    ip netns exec "$ns" tc qdisc del dev eth0 root 2>/dev/null || true
    ip netns exec "$BRIDGE_NS" tc qdisc del dev "v$i" root 2>/dev/null || true
    if command -v iptables >/dev/null; then
        ip netns exec "$ns" iptables -F OUTPUT
        ip netns exec "$ns" iptables -F INPUT
        ip netns exec "$ns" iptables -t nat -F OUTPUT 2>/dev/null || true
    fi
    if [[ -f $STATE/relay-$host ]]; then kill -KILL "$(cat "$STATE/relay-$host")" 2>/dev/null || true; rm -f "$STATE/relay-$host"; fi
    if [[ -n $rate ]]; then
        if ip netns exec "$ns" tc qdisc add dev eth0 root netem delay "$delay" loss "$(awk "BEGIN{print $loss*100}")%" rate "$rate" limit 10000 2>/dev/null; then
            ip netns exec "$BRIDGE_NS" tc qdisc add dev "v$i" root netem delay "$delay" loss "$(awk "BEGIN{print $loss*100}")%" rate "$rate" limit 10000
        else
            echo "netlab: this kernel has no sch_netem: $host gets rate $rate (tbf), loss $loss per direction (iptables) and $delay each way by a TCP relay (netlab_delay.py)" >&2
            command -v iptables >/dev/null || die "without netem, loss and delay need iptables (apt-get install iptables)"
            command -v python3 >/dev/null || die "without netem, delay needs python3 (the relay)"
            start_relay "$host" "$ns" "$delay"
            ip netns exec "$ns" tc qdisc add dev eth0 root tbf rate "$rate" burst 32kb latency 400ms
            ip netns exec "$BRIDGE_NS" tc qdisc add dev "v$i" root tbf rate "$rate" burst 32kb latency 400ms
            ip netns exec "$ns" iptables -A OUTPUT -o eth0 -m statistic --mode random --probability "$loss" -j DROP
            ip netns exec "$ns" iptables -A INPUT -i eth0 -m statistic --mode random --probability "$loss" -j DROP
        fi
    fi
    echo "$host $profile" >> "$STATE/profiles"
}

# The delay relay of one host (no netem): python3 on 127.0.0.1:RELAY_PORT inside the host, the
# host's TCP to the aggregator host redirected to it. Returns once it listens.
start_relay() {
    local host=$1 ns=$2 delay=$3 seconds pid tries=0
    seconds=$(awk "BEGIN{print ${delay%ms}/1000}")
    ip netns exec "$ns" iptables -t nat -A OUTPUT -p tcp -d "$NET.1" -m mark ! --mark 0x77 -j REDIRECT --to-ports "$RELAY_PORT"
    # The relay outlives this script: it must hold none of the caller's descriptors (a caller
    # waiting for this script's end through one of them would wait for the relay too).
    (
        for fd in /proc/self/fd/*; do fd=${fd##*/}; (( fd > 2 )) && eval "exec $fd>&-"; done 2>/dev/null
        exec ip netns exec "$ns" python3 "$HERE/netlab_delay.py" --port "$RELAY_PORT" --delay "$seconds" </dev/null >/dev/null 2>&1
    ) &
    pid=$!
    echo "$pid" > "$STATE/relay-$host"
    until ip netns exec "$ns" ss -Hltn "sport = :$RELAY_PORT" | grep -q .; do
        kill -0 "$pid" 2>/dev/null || die "the delay relay for $host did not start"
        (( ++tries < 600 )) || die "the delay relay for $host is not listening after 30 s"
        sleep 0.05
    done
}

cut_link() {
    [[ $# == 2 && $2 =~ ^[0-9]+$ ]] || die "cut HOST SECONDS"
    local i
    i=$(index_of "$1")
    # The bridge port goes down: the host's eth0 loses carrier, nothing passes either way.
    ip -n "$BRIDGE_NS" link set "v$i" down
    echo "netlab: $1's link down for $2 s"
    sleep "$2"
    ip -n "$BRIDGE_NS" link set "v$i" up
    ip -n "$BRIDGE_NS" link set "v$i" master br0
    echo "netlab: $1's link up"
}

run_round() {
    [[ $# == 2 || ($# == 4 && $3 == --cut) ]] || die "run PROFILE DIR [--cut HOST]"
    local profile=$1 dir=$2 cut=${4:-} fedmerge=${FEDMERGE:-$PWD/.build/debug/fedmerge}
    [[ -x $fedmerge ]] || die "no fedmerge binary at $fedmerge (set FEDMERGE)"
    [[ -f $dir/aggregator.yaml ]] || die "$dir has no aggregator.yaml"
    local agents=() f
    for f in "$dir"/agent-*.yaml; do
        [[ -f $f ]] || die "$dir has no agent-NAME.yaml"
        f=${f##*/agent-}; agents+=("${f%.yaml}")
    done
    trap 'down' EXIT
    up "${agents[@]}"
    local a
    for a in "${agents[@]}"; do shape "$a" "$profile"; done
    mkdir -p "$dir/logs"
    local start=$SECONDS
    (cd "$dir" && exec ip netns exec "$(ns_of agg)" "$fedmerge" aggregator aggregator.yaml --once) > "$dir/logs/aggregator.log" 2>&1 &
    local aggregator=$!
    for a in "${agents[@]}"; do
        (cd "$dir" && exec ip netns exec "$(ns_of "$a")" "$fedmerge" agent "agent-$a.yaml" --once --connect-timeout 120) > "$dir/logs/$a.log" 2>&1 &
    done
    if [[ -n $cut ]]; then
        index_of "$cut" >/dev/null
        # Mid-upload: once the aggregator's store has a directory for this agent.
        while [[ ! -d $dir/spool/store/$cut ]] && kill -0 "$aggregator" 2>/dev/null; do sleep 0.05; done
        cut_link "$cut" 20
    fi
    local status=0
    wait "$aggregator" || status=$?
    echo "netlab: round on profile $profile finished in $((SECONDS - start)) s, aggregator exit $status"
    local report
    report=$(ls "$dir"/output/*/report.md 2>/dev/null | head -1 || true)
    [[ -n $report ]] && sed -n '/upload payload bytes/,/^$/p' "$report" || true
    return "$status"
}

command=${1:-}
shift || true
case $command in
    up) up "$@" ;;
    down) down ;;
    shape) shape "$@" ;;
    cut) cut_link "$@" ;;
    addr) [[ $# == 1 ]] || die "addr HOST"; addr_of "$1" ;;
    exec) [[ $# -ge 2 ]] || die "exec HOST CMD..."; ns=$(ns_of "$1"); index_of "$1" >/dev/null; shift; exec ip netns exec "$ns" "$@" ;;
    run) run_round "$@" ;;
    *) die "usage: netlab.sh up N|NAME... | shape HOST PROFILE | cut HOST SECONDS | addr HOST | exec HOST CMD... | run PROFILE DIR [--cut HOST] | down" ;;
esac
