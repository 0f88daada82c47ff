#!/usr/bin/env bash
# cluster.sh: run the same `tern bench` scenarios against a three-node Tern
# cluster on loopback (publishers on node 1, subscribers on node 2) and
# against a single Tern node (the same binary without cluster flags),
# alternating between the two, and print them side by side. See the
# Cluster section of bench/README.md. Every broker keeps its state on disk:
# the single node in Pebble with durability sync, the cluster in its
# replicated JetStream store.
#
# Environment (all optional):
#   DUR=10s          how long each scenario publishes
#   CLIENTS=10       -c for fanin and fanout
#   PAIRS=50         -c for p2p
#   SIZE=64          payload bytes (-s)
#   RATE=100         msg/s per publisher in the p2p *-paced rows (latency at a fixed load)
#   FAN_RATE=500     msg/s per publisher in the fanin and fanout *-paced rows
#   BENCH_ARGS=      extra tern bench flags for every run
#   DUR_SESSIONS=1   offline persistent sessions in the durable-q1 row
#   DUR_MSGS=5000    messages per publisher in the durable-q1 row (all of
#                    them fit the sessions' queues: max_queued_messages 100000)
#   SCENARIOS="fanin-q0 fanin-q1 p2p-q0 p2p-q1 fanout-q0 fanout-q1
#              fanin-q0-paced fanin-q1-paced p2p-q0-paced p2p-q1-paced fanout-q0-paced fanout-q1-paced
#              durable-q1"
#                    durable-q1: DUR_SESSIONS persistent sessions subscribe
#                    (on node 2) and go offline, then CLIENTS publishers (on
#                    node 1) send them QoS 1 messages: acknowledged msg/s
#   PORT=18840       the single node listens on PORT, the cluster's nodes on
#                    PORT+1..3 (MQTT) and PORT+11..13 (routes)
#   TERN_ARGS=       extra `tern serve` flags for every node
#   KEEP=1           keep the work directory (JSON results, broker logs)
set -euo pipefail

case ${1:-} in
-h | --help)
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
esac

DUR=${DUR:-10s}
CLIENTS=${CLIENTS:-10}
PAIRS=${PAIRS:-50}
SIZE=${SIZE:-64}
RATE=${RATE:-100}
FAN_RATE=${FAN_RATE:-500}
BENCH_ARGS=${BENCH_ARGS:-}
DUR_SESSIONS=${DUR_SESSIONS:-1}
DUR_MSGS=${DUR_MSGS:-5000}
SCENARIOS=${SCENARIOS:-"fanin-q0 fanin-q1 p2p-q0 p2p-q1 fanout-q0 fanout-q1
	fanin-q0-paced fanin-q1-paced p2p-q0-paced p2p-q1-paced fanout-q0-paced fanout-q1-paced durable-q1"}
PORT=${PORT:-18840}
TERN_ARGS=${TERN_ARGS:-}

cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
command -v jq >/dev/null && command -v column >/dev/null || { echo "cluster.sh needs jq and column" >&2; exit 1; }
ports_free "$PORT" $((PORT + 1)) $((PORT + 2)) $((PORT + 3)) $((PORT + 11)) $((PORT + 12)) $((PORT + 13))

start_work cluster-bench
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# The limits of compare.sh: 100 QoS 1/2 messages in flight and room to
# queue 100000 per client.
cat >"$work/tern.yaml" <<EOF
limits:
  max_inflight: 100
  max_queued_messages: 100000
EOF

"$tern" serve --config "$work/tern.yaml" --listen "127.0.0.1:$PORT" --data-dir "$work/single" --durability sync --admin "" --log-level warn $TERN_ARGS \
	>"$work/single.log" 2>&1 &
pids+=($!); single_pid=$!
node_pids=()
for i in 1 2 3; do
	peers=()
	for j in 1 2 3; do [ "$i" = "$j" ] || peers+=(--cluster-peer "127.0.0.1:$((PORT + 10 + j))"); done
	"$tern" serve --config "$work/tern.yaml" --listen "127.0.0.1:$((PORT + i))" --data-dir "$work/n$i" --admin "127.0.0.1:$((PORT + 20 + i))" \
		--log-level warn --node "n$i" --cluster-listen "127.0.0.1:$((PORT + 10 + i))" "${peers[@]}" $TERN_ARGS \
		>"$work/n$i.log" 2>&1 &
	pids+=($!); node_pids+=($!)
done
# Every node ready (JetStream up) and the single node accepting.
for _ in $(seq 300); do
	ok=0
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && ok=1
	for i in 1 2 3; do
		curl -sf "http://127.0.0.1:$((PORT + 20 + i))/readyz" >/dev/null 2>&1 && ok=$((ok + 1))
	done
	[ "$ok" = 4 ] && break
	sleep 0.1
done
[ "$ok" = 4 ] || { echo "brokers not ready; logs:" >&2; tail -n 20 "$work"/*.log >&2; exit 1; }

# where KIND: the tern bench flags that place the clients.
where() {
	if [ "$1" = single ]; then
		echo "--url tcp://127.0.0.1:$PORT"
	else
		echo "--url tcp://127.0.0.1:$((PORT + 1)) --sub-url tcp://127.0.0.1:$((PORT + 2))"
	fi
}

# row_args ROW: the row's tern bench arguments (durable-q1: the publishers').
row_args() {
	case $1 in
	durable-q1) echo "pub -c $CLIENTS -q 1 -t dur/0 -n $DUR_MSGS" ;;
	*) scenario_args "$1" ;;
	esac
}

# sessions KIND ROW: the durable row's offline persistent sessions, made
# where the subscribers go (node 2 in the cluster).
sessions() {
	local url="tcp://127.0.0.1:$PORT" out="$work/$2.$1.setup"
	[ "$1" = cluster ] && url="tcp://127.0.0.1:$((PORT + 2))"
	"$tern" bench conn -c "$DUR_SESSIONS" -t dur/0 -q 1 --persistent -i "dur-$1" -d 10ms --url "$url" --json >"$out.json" 2>"$out.err" ||
		{ echo "making the sessions ($1) failed:" >&2; cat "$out.err" >&2; }
	sleep 0.5 # the DISCONNECTs handled: every session offline
}

measure() { # KIND ROW
	local kind=$1 row=$2 out="$work/$2.$1" c0 c1 t0 t1
	local procs=("$single_pid")
	[ "$kind" = cluster ] && procs=("${node_pids[@]}")
	for p in "${procs[@]}"; do kill -0 "$p" 2>/dev/null || { echo "a broker exited; logs:" >&2; tail -n 20 "$work"/*.log >&2; exit 1; }; done
	local d=(-d "$DUR")
	if [ "$row" = durable-q1 ]; then
		sessions "$kind" "$row"
		d=() # a count (-n), not a duration
	fi
	# shellcheck disable=SC2046
	echo "tern bench $(row_args "$row") $(where "$kind") -s $SIZE ${d[*]} $BENCH_ARGS" >"$out.cmd"
	c0=$(cpu_ticks "${procs[@]}"); t0=$(date +%s.%N)
	# shellcheck disable=SC2046
	"$tern" bench $(row_args "$row") $(where "$kind") -s "$SIZE" "${d[@]}" $BENCH_ARGS --json >"$out.json" 2>"$out.err" ||
		{ echo "tern bench $row ($kind) failed:" >&2; cat "$out.err" >&2; }
	c1=$(cpu_ticks "${procs[@]}"); t1=$(date +%s.%N)
	awk -v c="$((c1 - c0))" -v hz="$hz" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f\n", 100 * c / hz / (t1 - t0) }' >"$out.cpu"
}

fields() { # ROW KIND: "rate p50 p99 loss cpu"
	local f="$work/$1.$2" q='[.recv_rate, .latency.p50_us, .latency.p99_us, (.loss_pct | tostring | .[0:5]) + "%"]'
	[ -s "$f.json" ] || { echo "0 - - - -"; return; }
	# The durable row counts what was acknowledged: nobody receives.
	[ "$1" = durable-q1 ] && q='[.acked / (.duration_s + .drain_s), null, null, "-"]'
	echo "$(jq -r "$q"' | map(if . == null then "-" elif type == "number" then (. * 10 | round / 10 | tostring) else . end) | join(" ")' "$f.json") $(cat "$f.cpu")"
}

n=0
for row in $SCENARIOS; do
	row_args "$row" >/dev/null
	if [ $((n % 2)) -eq 0 ]; then order="single cluster"; else order="cluster single"; fi
	for k in $order; do
		echo "$row: $k..." >&2
		measure "$k" "$row"
	done
	n=$((n + 1))
done

printf '\n%s, %s per scenario, %s-byte payloads, on %s cores%s\n' \
	"$(date -u +%Y-%m-%dT%H:%MZ)" "$DUR" "$SIZE" "$(nproc)" "${BENCH_ARGS:+, tern bench $BENCH_ARGS}"
{
	echo "scenario|single msg/s|p50|p99|loss|cpu%|cluster msg/s|p50|p99|loss|cpu%|cluster/single"
	for row in $SCENARIOS; do
		read -r sr sp50 sp99 sl scpu <<<"$(fields "$row" single)"
		read -r cr cp50 cp99 cl ccpu <<<"$(fields "$row" cluster)"
		ratio=$(awk -v a="$cr" -v b="$sr" 'BEGIN { if (b + 0 > 0) printf "%.2fx", a / b; else print "-" }')
		echo "$row ($(row_args "$row"))|$(printf '%.0f' "$sr")|$(ms "$sp50")|$(ms "$sp99")|$sl|$scpu|$(printf '%.0f' "$cr")|$(ms "$cp50")|$(ms "$cp99")|$cl|$ccpu|$ratio"
	done
} | column -t -s '|'
echo
echo "msg/s: received per second (durable-q1: acknowledged per second, into $DUR_SESSIONS offline persistent session(s) on node 2 or the single node). cpu%: broker CPU over the run in % of one core (cluster: the three nodes together)."
echo "single: $(where single); cluster: $(where cluster) (publishers on node 1, subscribers on node 2). Commands:"
for row in $SCENARIOS; do for k in single cluster; do echo "  $(cat "$work/$row.$k.cmd")"; done; done
