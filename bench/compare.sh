#!/usr/bin/env bash
# compare.sh: run the same `tern bench` scenarios against Tern and against
# Debian's Mosquitto, on loopback, alternating between the two brokers, and
# print a side-by-side table. See bench/README.md for how to read it.
#
#   bench/compare.sh                 the table on stdout
#   bench/compare.sh --report DIR    and DIR/index.html: one page with both brokers side
#                                    by side (throughput over time, latency histograms,
#                                    parameters), DIR/ROW.BROKER.html for each run and
#                                    DIR/ROW.BROKER.json, the tern bench --json summaries
#
# Environment (all optional):
#   DUR=10s          how long each scenario publishes (conn: holds)
#   CLIENTS=10       -c for fanin, fanout and pub
#   PAIRS=50         -c for p2p
#   CONNS=2000       -c for conn
#   SIZE=64          payload bytes (-s)
#   RATE=100         msg/s per publisher in the *-paced rows (latency at a fixed load)
#   BENCH_ARGS=      extra tern bench flags for every run, e.g. "-r 1000"
#   SCENARIOS="fanin-q0 fanout-q0 p2p-q1 p2p-q1-paced pub-q1 conn"   which rows, in order
#   TERN_PORT=18831 MOSQ_PORT=18832
#   MOSQUITTO=/usr/sbin/mosquitto
#   TERN_ARGS=       extra `tern serve` flags
#   KEEP=1           keep the work directory (JSON results, broker logs)
set -euo pipefail

REPORT=
while [ $# -gt 0 ]; do
	case $1 in
	--report)
		[ $# -ge 2 ] || { echo "compare.sh: --report needs a directory" >&2; exit 2; }
		REPORT=$2
		shift 2
		;;
	--report=*)
		REPORT=${1#--report=}
		shift
		;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "compare.sh: unknown argument $1 (see --help)" >&2
		exit 2
		;;
	esac
done

DUR=${DUR:-10s}
CLIENTS=${CLIENTS:-10}
PAIRS=${PAIRS:-50}
CONNS=${CONNS:-2000}
SIZE=${SIZE:-64}
BENCH_ARGS=${BENCH_ARGS:-}
RATE=${RATE:-100}
SCENARIOS=${SCENARIOS:-"fanin-q0 fanout-q0 p2p-q1 p2p-q1-paced pub-q1 conn"}
TERN_PORT=${TERN_PORT:-18831}
MOSQ_PORT=${MOSQ_PORT:-18832}
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
TERN_ARGS=${TERN_ARGS:-}

if [ -n "$REPORT" ]; then
	mkdir -p "$REPORT"
	REPORT=$(cd "$REPORT" && pwd)
fi
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
for c in jq column; do command -v "$c" >/dev/null || { echo "compare.sh needs $c" >&2; exit 1; }; done
[ -x "$MOSQUITTO" ] || { echo "no $MOSQUITTO: apt-get install mosquitto" >&2; exit 1; }

ports_free "$TERN_PORT" "$MOSQ_PORT"

start_work compare
if [ -n "$REPORT" ]; then
	go build -o "$work/htmlreport" ./bench/htmlreport
fi

cat >"$work/mosquitto.conf" <<EOF
listener $MOSQ_PORT 127.0.0.1
allow_anonymous true
persistence false
# Both brokers get the same limits (tern.yaml below): 100 QoS 1/2
# messages in flight per client, and room to queue 100000 per client, so
# that neither drops what the other would keep.
max_inflight_messages 100
max_queued_messages 100000
log_dest stderr
log_type error
log_type warning
EOF

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cat >"$work/tern.yaml" <<EOF
limits:
  max_inflight: 100
  max_queued_messages: 100000
EOF
"$tern" serve --config "$work/tern.yaml" --listen "127.0.0.1:$TERN_PORT" --no-persist --log-level warn $TERN_ARGS >"$work/tern.log" 2>&1 &
pids+=($!); tern_pid=$!
"$MOSQUITTO" -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
pids+=($!); mosq_pid=$!

wait_port() {
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "nothing listens on port $1; log:" >&2
	cat "$work"/*.log >&2
	exit 1
}
wait_port "$TERN_PORT"
wait_port "$MOSQ_PORT"
for p in "${pids[@]}"; do
	kill -0 "$p" 2>/dev/null || { echo "a broker exited at startup; logs:" >&2; cat "$work"/*.log >&2; exit 1; }
done

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# measure BROKER PID PORT ROW: run one scenario, leave ROW.json and ROW.res
# (broker CPU % of one core, peak RSS growth in KiB).
measure() {
	local broker=$1 pid=$2 port=$3 row=$4 out="$work/$4.$1"
	kill -0 "$pid" 2>/dev/null || { echo "$broker is not running; log:" >&2; cat "$work/$broker.log" >&2; exit 1; }
	local rss0 peak t0 c0 c1 t1 bpid report=()
	[ -n "$REPORT" ] && report=(--report "$REPORT/$row.$broker.html")
	rss0=$(rss_kb "$pid"); peak=$rss0
	c0=$(cpu_ticks "$pid"); t0=$(date +%s.%N)
	# shellcheck disable=SC2046
	"$tern" bench $(scenario_args "$row") -h 127.0.0.1 -p "$port" -s "$SIZE" -d "$DUR" $BENCH_ARGS --json "${report[@]}" >"$out.json" 2>"$out.err" &
	bpid=$!
	while kill -0 "$bpid" 2>/dev/null; do
		r=$(rss_kb "$pid" 2>/dev/null || echo 0)
		[ "${r:-0}" -gt "$peak" ] && peak=$r
		sleep 0.25
	done
	wait "$bpid" || { echo "tern bench $row against $broker failed:" >&2; cat "$out.err" >&2; }
	c1=$(cpu_ticks "$pid"); t1=$(date +%s.%N)
	awk -v c="$((c1 - c0))" -v hz="$hz" -v t0="$t0" -v t1="$t1" -v rss="$((peak - rss0))" \
		'BEGIN { printf "%.0f %d\n", 100 * c / hz / (t1 - t0), rss }' >"$out.res"
}

# field ROW BROKER: "rate p50 p99 loss cpu rss" for the table.
fields() {
	local f="$work/$1.$2"
	[ -s "$f.json" ] || { echo "0 - - - - 0"; return; }
	local q
	if [ "$1" = conn ]; then
		q='[.connect_rate, .connect_latency.p50_us, .connect_latency.p99_us, "\(.connections.ok)/\(.connections.attempted)"]'
	elif [ "${1%%-*}" = pub ]; then
		# No subscribers: the rate is what the broker acknowledged (QoS 1).
		q='[(if .qos > 0 then .acked else .sent end) / .duration_s, null, null, "-"]'
	else
		q='[.recv_rate, .latency.p50_us, .latency.p99_us, (.loss_pct | tostring | .[0:5]) + "%"]'
	fi
	echo "$(jq -r "$q | map(if . == null then \"-\" elif type == \"number\" then (. * 10 | round / 10 | tostring) else . end) | join(\" \")" "$f.json") $(cat "$f.res")"
}

n=0
for row in $SCENARIOS; do
	scenario_args "$row" >/dev/null
	# Alternate which broker goes first, so that neither always runs on a
	# machine the other has just warmed (or heated).
	if [ $((n % 2)) -eq 0 ]; then order="tern mosquitto"; else order="mosquitto tern"; fi
	for b in $order; do
		echo "$row: $b..." >&2
		if [ "$b" = tern ]; then measure tern "$tern_pid" "$TERN_PORT" "$row"; else measure mosquitto "$mosq_pid" "$MOSQ_PORT" "$row"; fi
	done
	n=$((n + 1))
done

heading=$(printf '%s, %s per scenario, %s-byte payloads, on %s cores%s' \
	"$(date -u +%Y-%m-%dT%H:%MZ)" "$DUR" "$SIZE" "$(nproc)" "${BENCH_ARGS:+, tern bench $BENCH_ARGS}")
printf '\n%s\n' "$heading"
{
	echo "scenario|Tern msg/s|p50|p99|loss|cpu%|+RSS|Mosquitto msg/s|p50|p99|loss|cpu%|+RSS|Tern/Mosq"
	for row in $SCENARIOS; do
		read -r tr tp50 tp99 tl tcpu trss <<<"$(fields "$row" tern)"
		read -r mr mp50 mp99 ml mcpu mrss <<<"$(fields "$row" mosquitto)"
		ratio=$(awk -v a="$tr" -v b="$mr" 'BEGIN { if (b + 0 > 0) printf "%.2fx", a / b; else print "-" }')
		echo "$row ($(scenario_args "$row"))|$(printf '%.0f' "$tr")|$(ms "$tp50")|$(ms "$tp99")|$tl|$tcpu|$((trss / 1024))MiB|$(printf '%.0f' "$mr")|$(ms "$mp50")|$(ms "$mp99")|$ml|$mcpu|$((mrss / 1024))MiB|$ratio"
	done
} | column -t -s '|'
echo
echo "msg/s: received per second (pub: acknowledged per second; conn: connections per second, p50/p99 connect latency, loss column = connected/attempted)."
echo "cpu%: the broker's CPU time over the run, in % of one core; +RSS: its peak resident memory growth during the run."

if [ -n "$REPORT" ]; then
	args=(-o "$REPORT/index.html" -title "Tern vs Mosquitto: tern bench on loopback"
		-subtitle "$heading; $("$tern" version | head -1 || true), $("$MOSQUITTO" -h 2>&1 | head -1 || true)")
	for row in $SCENARIOS; do
		args+=(-section "$row ($(scenario_args "$row"))")
		for b in tern mosquitto; do
			cp "$work/$row.$b.json" "$REPORT/$row.$b.json" 2>/dev/null || true
			read -r _ _ _ _ cpu rss <<<"$(fields "$row" "$b")"
			args+=("$b=$REPORT/$row.$b.json" -x "cpu%=$cpu" -x "+RSS=$((rss / 1024))MiB")
		done
	done
	args+=(-note "rate: messages received per second (pub: acknowledged per second; conn: connections per second, connect latency, loss = connected/attempted). cpu%: the broker's CPU time over the run, in % of one core; +RSS: its peak resident memory growth during the run."
		-note "Both brokers and the load generator share this machine: run it more than once and look at the spread. Rows without -r flood, so their latencies are mostly queueing; the paced rows compare latency at equal load.")
	"$work/htmlreport" "${args[@]}"
	echo "report: $REPORT/index.html" >&2
fi
