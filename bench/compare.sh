#!/usr/bin/env bash
# compare.sh: run the same `tern bench` scenarios against Tern and against
# Debian's Mosquitto, on loopback, alternating between the two brokers, and
# print the results side by side: messages per second, memory per idle
# connection (mem, mem-tls) and QoS 1 fan-out to offline persistent
# sessions (fanout-durable). See bench/README.md for how to read them.
#
#   bench/compare.sh                 the tables on stdout
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
#   MEM_CONNS=5000   idle connections in the mem rows (at most 19000 here: 20,000 open files a process)
#   MEM_SETTLE=2s    mem rows: wait this long after the last connection before reading RSS
#   DURABLE_SESSIONS=1000   offline persistent sessions in fanout-durable
#   DURABLE_MSGS=3000       messages its publisher sends (a count, not DUR: each is
#                           queued DURABLE_SESSIONS times, so this bounds the brokers' memory)
#   SCENARIOS="fanin-q0 fanout-q0 p2p-q1 p2p-q1-paced pub-q1 conn mem mem-tls fanout-durable"
#                    which rows, in order; mem, mem-tls and fanout-durable each get
#                    brokers of their own, started for the row and stopped after it
#   TERN_PORT=18831 MOSQ_PORT=18832 TERN_TLS_PORT=18833 MOSQ_TLS_PORT=18834
#   TERN_ADMIN_PORT=18835   Tern's admin server (fanout-durable reads its store metrics)
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
MEM_CONNS=${MEM_CONNS:-5000}
MEM_SETTLE=${MEM_SETTLE:-2s}
DURABLE_SESSIONS=${DURABLE_SESSIONS:-1000}
DURABLE_MSGS=${DURABLE_MSGS:-3000}
SCENARIOS=${SCENARIOS:-"fanin-q0 fanout-q0 p2p-q1 p2p-q1-paced pub-q1 conn mem mem-tls fanout-durable"}
TERN_PORT=${TERN_PORT:-18831}
MOSQ_PORT=${MOSQ_PORT:-18832}
TERN_TLS_PORT=${TERN_TLS_PORT:-18833}
MOSQ_TLS_PORT=${MOSQ_TLS_PORT:-18834}
TERN_ADMIN_PORT=${TERN_ADMIN_PORT:-18835}
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

ports_free "$TERN_PORT" "$MOSQ_PORT" "$TERN_TLS_PORT" "$MOSQ_TLS_PORT" "$TERN_ADMIN_PORT"

start_work compare
if [ -n "$REPORT" ]; then
	go build -o "$work/htmlreport" ./bench/htmlreport
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# row_kind ROW: the brokers a row runs against. The message rows share one
# pair (plain); mem, mem-tls and durable rows get a pair of their own,
# started for the row, so that what earlier rows left in the brokers'
# heaps does not count (mem) and so that they have their listeners and
# stores (mem-tls, durable).
row_kind() {
	case $1 in
	mem | mem-tls) echo "$1" ;;
	fanout-durable) echo durable ;;
	*) echo plain ;;
	esac
}

# row_args ROW: the arguments of the row's measured tern bench run.
row_args() {
	case $1 in
	mem | mem-tls) echo "conn -c $MEM_CONNS -t idle/%i/cmd -q 1" ;;
	fanout-durable) echo "pub -c 1 -q 1 -t fan/0 -n $DURABLE_MSGS" ;;
	*) scenario_args "$1" ;;
	esac
}

# row_label ROW: the row's name in the tables.
row_label() {
	case $1 in
	fanout-durable) echo "$1 (conn -c $DURABLE_SESSIONS -t fan/0 -q 1 --persistent, then $(row_args "$1"))" ;;
	*) echo "$1 ($(row_args "$1"))" ;;
	esac
}

for row in $SCENARIOS; do row_args "$row" >/dev/null; done
# shellcheck disable=SC2086
rows=" $(echo $SCENARIOS) "
case $rows in *" fanout-durable "*) command -v curl >/dev/null || { echo "fanout-durable needs curl" >&2; exit 1; } ;; esac
case $rows in
*" mem-tls "*)
	command -v openssl >/dev/null || { echo "mem-tls needs openssl" >&2; exit 1; }
	# A self-signed certificate for both brokers' TLS listeners; tern bench trusts it.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
		-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -keyout "$work/tls.key" -out "$work/tls.pem" 2>"$work/openssl.log" ||
		{ echo "openssl failed:" >&2; cat "$work/openssl.log" >&2; exit 1; }
	;;
esac

wait_port() {
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "nothing listens on port $1; log:" >&2
	cat "$work"/*/*.log >&2
	exit 1
}

# start_pair KIND: start Tern and Mosquitto for a kind of row (row_kind)
# in $work/KIND, setting tern_pid, mosq_pid, tern_url and mosq_url.
start_pair() {
	local kind=$1 d="$work/$1" tport=$TERN_PORT mport=$MOSQ_PORT scheme=tcp
	mkdir -p "$d"
	[ "$kind" = mem-tls ] && { tport=$TERN_TLS_PORT; mport=$MOSQ_TLS_PORT; scheme=tls; }
	# Both brokers get the same limits: 100 QoS 1/2 messages in flight per
	# client, and room to queue 100000 per client (durable: without a
	# bound), so that neither drops what the other would keep.
	local queued=100000
	[ "$kind" = durable ] && queued=0 # Mosquitto: no maximum
	cat >"$d/mosquitto.conf" <<EOF
listener $mport 127.0.0.1
allow_anonymous true
max_inflight_messages 100
max_queued_messages $queued
log_dest stderr
log_type error
log_type warning
# As root, Mosquitto would become the user mosquitto, who may not read
# the key or write the store in the work directory.
user $(id -un)
EOF
	if [ "$kind" = durable ]; then
		mkdir -p "$d/mosquitto-data"
		printf 'persistence true\npersistence_location %s/\n' "$d/mosquitto-data" >>"$d/mosquitto.conf"
		cat >"$d/tern.yaml" <<EOF
limits:
  max_inflight: 100
  max_queued_messages: 1000000000
  max_queued_bytes: 1099511627776
  max_queued_bytes_total: 1099511627776
storage:
  data_dir: $d/tern-data
  durability: sync
EOF
	else
		echo 'persistence false' >>"$d/mosquitto.conf"
		printf 'limits:\n  max_inflight: 100\n  max_queued_messages: 100000\n' >"$d/tern.yaml"
	fi
	local targs=(--listen "127.0.0.1:$tport")
	if [ "$kind" = mem-tls ]; then
		printf 'certfile %s\nkeyfile %s\n' "$work/tls.pem" "$work/tls.key" >>"$d/mosquitto.conf"
		cat >>"$d/tern.yaml" <<EOF
listeners:
  - address: 127.0.0.1:$tport
    type: tls
    tls: {cert_file: $work/tls.pem, key_file: $work/tls.key}
EOF
		targs=()
	fi
	[ "$kind" = durable ] || targs+=(--no-persist)
	"$tern" serve --config "$d/tern.yaml" "${targs[@]}" --admin "127.0.0.1:$TERN_ADMIN_PORT" --log-level warn $TERN_ARGS >"$d/tern.log" 2>&1 &
	pids+=($!); tern_pid=$!
	"$MOSQUITTO" -c "$d/mosquitto.conf" >"$d/mosquitto.log" 2>&1 &
	pids+=($!); mosq_pid=$!
	tern_url=$scheme://127.0.0.1:$tport
	mosq_url=$scheme://127.0.0.1:$mport
	wait_port "$tport"
	wait_port "$mport"
	[ "$kind" = durable ] && wait_port "$TERN_ADMIN_PORT"
	for p in "$tern_pid" "$mosq_pid"; do
		kill -0 "$p" 2>/dev/null || { echo "a broker exited at startup; logs:" >&2; cat "$d"/*.log >&2; exit 1; }
	done
}

# stop_pair: stop the running pair and wait for both.
stop_pair() {
	[ -n "${tern_pid:-}" ] || return 0
	kill "$tern_pid" "$mosq_pid" 2>/dev/null || true
	wait "$tern_pid" "$mosq_pid" 2>/dev/null || true
	local keep=() p
	for p in "${pids[@]}"; do [ "$p" = "$tern_pid" ] || [ "$p" = "$mosq_pid" ] || keep+=("$p"); done
	pids=("${keep[@]}")
	tern_pid=
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
fd_count() { ls -U "/proc/$1/fd" | wc -l; }
wchar() { awk '/^wchar/ {print $2}' "/proc/$1/io"; }

# pid_of BROKER, url_of BROKER: the running pair's.
pid_of() { if [ "$1" = tern ]; then echo "$tern_pid"; else echo "$mosq_pid"; fi; }
url_of() { if [ "$1" = tern ]; then echo "$tern_url"; else echo "$mosq_url"; fi; }

# measure BROKER ROW ARGS...: run tern bench ARGS against the broker, leave
# ROW.BROKER.json and ROW.BROKER.res (broker CPU % of one core, peak RSS
# growth in KiB, bytes it wrote meanwhile: write syscalls, files and sockets).
measure() {
	local broker=$1 row=$2 out="$work/$2.$1" pid
	shift 2
	pid=$(pid_of "$broker")
	kill -0 "$pid" 2>/dev/null || { echo "$broker is not running; log:" >&2; cat "$work"/*/"$broker.log" >&2; exit 1; }
	local rss0 peak t0 c0 c1 t1 w0 w1 bpid report=()
	[ -n "$REPORT" ] && report=(--report "$REPORT/$row.$broker.html")
	rss0=$(rss_kb "$pid"); peak=$rss0
	c0=$(cpu_ticks "$pid"); t0=$(date +%s.%N); w0=$(wchar "$pid")
	"$tern" bench "$@" --url "$(url_of "$broker")" --json "${report[@]}" >"$out.json" 2>"$out.err" &
	bpid=$!
	while kill -0 "$bpid" 2>/dev/null; do
		r=$(rss_kb "$pid" 2>/dev/null || echo 0)
		[ "${r:-0}" -gt "$peak" ] && peak=$r
		sleep 0.25
	done
	wait "$bpid" || { echo "tern bench $row against $broker failed:" >&2; cat "$out.err" >&2; }
	c1=$(cpu_ticks "$pid"); t1=$(date +%s.%N); w1=$(wchar "$pid")
	awk -v c="$((c1 - c0))" -v hz="$hz" -v t0="$t0" -v t1="$t1" -v rss="$((peak - rss0))" -v w="$((w1 - w0))" \
		'BEGIN { printf "%.0f %d %d\n", 100 * c / hz / (t1 - t0), rss, w }' >"$out.res"
}

# measure_mem BROKER ROW: open MEM_CONNS idle connections, each subscribed
# to its own topic at QoS 1, and read the broker's RSS before the first
# and MEM_SETTLE after the last is accepted (its open files tell); leaves
# ROW.BROKER.json and ROW.BROKER.res (RSS before and after, KiB; 0 after:
# not measured).
measure_mem() {
	local broker=$1 row=$2 out="$work/$2.$1" pid rss0 rss1=0 fd0 fd last since bpid tls=() report=()
	pid=$(pid_of "$broker")
	[ -n "$REPORT" ] && report=(--report "$REPORT/$row.$broker.html")
	[ "$row" = mem-tls ] && tls=(--cafile "$work/tls.pem")
	rss0=$(rss_kb "$pid"); fd0=$(fd_count "$pid")
	# Held until told to stop (SIGTERM), at most 10 minutes.
	# shellcheck disable=SC2046
	"$tern" bench $(row_args "$row") --url "$(url_of "$broker")" "${tls[@]}" -d 10m $BENCH_ARGS --json "${report[@]}" \
		>"$out.json" 2>"$out.err" &
	bpid=$!
	last=$fd0; since=$SECONDS
	while kill -0 "$bpid" 2>/dev/null; do
		fd=$(fd_count "$pid")
		[ "$fd" -ge $((fd0 + MEM_CONNS)) ] && break
		[ "$fd" -ne "$last" ] && { last=$fd; since=$SECONDS; }
		# No new connection for 10 s: some failed; measure those held.
		[ $((SECONDS - since)) -ge 10 ] && break
		sleep 0.2
	done
	sleep "$MEM_SETTLE"
	kill -0 "$bpid" 2>/dev/null && rss1=$(rss_kb "$pid")
	kill -TERM "$bpid" 2>/dev/null || true
	wait "$bpid" || { echo "tern bench $row against $broker failed:" >&2; cat "$out.err" >&2; }
	echo "$rss0 $rss1" >"$out.res"
}

# store_counts: the records Tern's store has committed and the bytes of
# their keys and values (its /metrics), "RECORDS BYTES".
store_counts() {
	curl -sf "http://127.0.0.1:$TERN_ADMIN_PORT/metrics" | awk '
		$1 == "tern_store_committed_records_total" { r = $2 }
		$1 == "tern_store_committed_bytes_total" { b = $2 }
		END { printf "%.0f %.0f\n", r, b }'
}

# measure_durable BROKER ROW: DURABLE_SESSIONS persistent sessions
# subscribe to fan/0 at QoS 1 and disconnect; then one publisher sends
# them DURABLE_MSGS QoS 1 messages (measure). For Tern, ROW.tern.store
# holds the store's committed records and bytes before and after.
measure_durable() {
	local broker=$1 row=$2 out="$work/$2.$1" r0
	"$tern" bench conn -c "$DURABLE_SESSIONS" -t fan/0 -q 1 --persistent -i "durable-$broker" -d 10ms \
		--url "$(url_of "$broker")" --json >"$out.setup.json" 2>"$out.setup.err" ||
		{ echo "making the sessions on $broker failed:" >&2; cat "$out.setup.err" >&2; }
	local ok
	ok=$(jq .connections.ok "$out.setup.json" 2>/dev/null || echo 0)
	[ "$ok" = "$DURABLE_SESSIONS" ] || echo "$broker: only $ok of $DURABLE_SESSIONS sessions made" >&2
	sleep 0.5 # the DISCONNECTs handled: every session offline
	[ "$broker" = tern ] && r0=$(store_counts)
	# shellcheck disable=SC2046
	measure "$broker" "$row" $(row_args "$row") -s "$SIZE" $BENCH_ARGS
	[ "$broker" = tern ] && echo "$r0 $(store_counts)" >"$out.store"
	return 0
}

n=0
kind=
for row in $SCENARIOS; do
	k=$(row_kind "$row")
	if [ "$k" != plain ] || [ "$kind" != plain ]; then
		stop_pair
		start_pair "$k"
		kind=$k
	fi
	# Alternate which broker goes first, so that neither always runs on a
	# machine the other has just warmed (or heated).
	if [ $((n % 2)) -eq 0 ]; then order="tern mosquitto"; else order="mosquitto tern"; fi
	for b in $order; do
		echo "$row: $b..." >&2
		case $k in
		plain)
			# shellcheck disable=SC2046
			measure "$b" "$row" $(row_args "$row") -s "$SIZE" -d "$DUR" $BENCH_ARGS
			;;
		mem | mem-tls) measure_mem "$b" "$row" ;;
		durable) measure_durable "$b" "$row" ;;
		esac
	done
	n=$((n + 1))
done
stop_pair

# fields ROW BROKER: "rate p50 p99 loss cpu rss written" for a message row.
fields() {
	local f="$work/$1.$2"
	[ -s "$f.json" ] && [ -s "$f.res" ] || { echo "0 - - - - 0 0"; return; }
	local q
	case $1 in
	conn) q='[.connect_rate, .connect_latency.p50_us, .connect_latency.p99_us, "\(.connections.ok)/\(.connections.attempted)"]' ;;
	# No subscribers: the rate is what the broker acknowledged (QoS 1),
	# up to the last acknowledgement.
	fanout-durable) q='[.acked / (.duration_s + .drain_s), null, null, "-"]' ;;
	pub-*) q='[(if .qos > 0 then .acked else .sent end) / .duration_s, null, null, "-"]' ;;
	*) q='[.recv_rate, .latency.p50_us, .latency.p99_us, (.loss_pct | tostring | .[0:5]) + "%"]' ;;
	esac
	echo "$(jq -r "$q | map(if . == null then \"-\" elif type == \"number\" then (. * 10 | round / 10 | tostring) else . end) | join(\" \")" "$f.json") $(cat "$f.res")"
}

# mem_fields ROW BROKER: "bytes-per-connection ok/attempted".
mem_fields() {
	local f="$work/$1.$2" ok att rss0 rss1
	[ -s "$f.json" ] && [ -s "$f.res" ] || { echo "- -"; return; }
	read -r ok att <<<"$(jq -r '"\(.connections.ok) \(.connections.attempted)"' "$f.json")"
	read -r rss0 rss1 <<<"$(cat "$f.res")"
	awk -v a="$rss0" -v b="$rss1" -v ok="$ok" -v att="$att" \
		'BEGIN { if (b > 0 && ok > 0) printf "%.0f %d/%d\n", (b - a) * 1024 / ok, ok, att; else printf "- %d/%d\n", ok, att }'
}

# per_msg BYTES ROW BROKER: BYTES over the messages the row's publisher
# had acknowledged.
per_msg() {
	awk -v b="$1" -v n="$(jq .acked "$work/$2.$3.json" 2>/dev/null || echo 0)" 'BEGIN { if (n > 0) printf "%.0f", b / n; else print "-" }'
}
# store_per_msg ROW: Tern's store records and bytes per message in the
# durable row, "RECORDS BYTES".
store_per_msg() {
	[ -s "$work/$1.tern.store" ] || { echo "- -"; return; }
	local r0 b0 r1 b1
	read -r r0 b0 r1 b1 <<<"$(cat "$work/$1.tern.store")"
	echo "$(per_msg "$((r1 - r0))" "$1" tern) $(per_msg "$((b1 - b0))" "$1" tern)"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "-" && b + 0 > 0) printf "%.2fx", a / b; else print "-" }'; }

msg_rows=() mem_rows=() dur_rows=()
for row in $SCENARIOS; do
	case $(row_kind "$row") in
	plain) msg_rows+=("$row") ;;
	mem | mem-tls) mem_rows+=("$row") ;;
	durable) dur_rows+=("$row") ;;
	esac
done

per=
[ ${#msg_rows[@]} -gt 0 ] && per=", $DUR per message scenario"
heading=$(printf '%s%s, %s-byte payloads, on %s cores%s' \
	"$(date -u +%Y-%m-%dT%H:%MZ)" "$per" "$SIZE" "$(nproc)" "${BENCH_ARGS:+, tern bench $BENCH_ARGS}")
printf '\n%s\n' "$heading"
if [ ${#msg_rows[@]} -gt 0 ]; then
	{
		echo "scenario|Tern msg/s|p50|p99|loss|cpu%|+RSS|Mosquitto msg/s|p50|p99|loss|cpu%|+RSS|Tern/Mosq"
		for row in "${msg_rows[@]}"; do
			read -r tr tp50 tp99 tl tcpu trss _ <<<"$(fields "$row" tern)"
			read -r mr mp50 mp99 ml mcpu mrss _ <<<"$(fields "$row" mosquitto)"
			echo "$(row_label "$row")|$(printf '%.0f' "$tr")|$(ms "$tp50")|$(ms "$tp99")|$tl|$tcpu|$((trss / 1024))MiB|$(printf '%.0f' "$mr")|$(ms "$mp50")|$(ms "$mp99")|$ml|$mcpu|$((mrss / 1024))MiB|$(ratio "$tr" "$mr")"
		done
	} | column -t -s '|'
	echo
	echo "msg/s: received per second (pub: acknowledged per second; conn: connections per second, p50/p99 connect latency, loss column = connected/attempted)."
	echo "cpu%: the broker's CPU time over the run, in % of one core; +RSS: its peak resident memory growth during the run."
fi
if [ ${#mem_rows[@]} -gt 0 ]; then
	echo
	{
		echo "idle connections|Tern B/conn|connected|Mosquitto B/conn|connected|Tern/Mosq"
		for row in "${mem_rows[@]}"; do
			read -r tb tc <<<"$(mem_fields "$row" tern)"
			read -r mb mc <<<"$(mem_fields "$row" mosquitto)"
			echo "$(row_label "$row")|$tb|$tc|$mb|$mc|$(ratio "$tb" "$mb")"
		done
	} | column -t -s '|'
	echo
	echo "B/conn: the broker's RSS growth (VmRSS) from before the first connection to $MEM_SETTLE after the last, per connection"
	echo "(each subscribed to idle/N/cmd at QoS 1; mem over TCP, mem-tls over TLS; fresh brokers for each row). Lower is smaller."
fi
if [ ${#dur_rows[@]} -gt 0 ]; then
	echo
	{
		echo "persistent sessions|Tern msg/s|cpu%|+RSS|written B/msg|store records/msg|store B/msg|Mosquitto msg/s|cpu%|+RSS|written B/msg|Tern/Mosq"
		for row in "${dur_rows[@]}"; do
			read -r tr _ _ _ tcpu trss tw <<<"$(fields "$row" tern)"
			read -r mr _ _ _ mcpu mrss mw <<<"$(fields "$row" mosquitto)"
			read -r sr sb <<<"$(store_per_msg "$row")"
			echo "$(row_label "$row")|$(printf '%.0f' "$tr")|$tcpu|$((trss / 1024))MiB|$(per_msg "$tw" "$row" tern)|$sr|$sb|$(printf '%.0f' "$mr")|$mcpu|$((mrss / 1024))MiB|$(per_msg "$mw" "$row" mosquitto)|$(ratio "$tr" "$mr")"
		done
	} | column -t -s '|'
	echo
	echo "msg/s: QoS 1 messages acknowledged per second, from the first sent to the last acknowledged, each queued for every offline session."
	echo "Tern: storage.durability sync (PUBACK after the fsync); Mosquitto: persistence true, which saves its in-memory state at exit or autosave, not per message."
	echo "written B/msg: bytes the broker wrote during the run (write syscalls: store, sockets, log) per message; store records/msg and B/msg: Tern's tern_store_committed_records_total and tern_store_committed_bytes_total (keys and values) per message."
fi

if [ -n "$REPORT" ]; then
	args=(-o "$REPORT/index.html" -title "Tern vs Mosquitto: tern bench on loopback"
		-subtitle "$heading; $("$tern" version | head -1 || true), $("$MOSQUITTO" -h 2>&1 | head -1 || true)")
	for row in $SCENARIOS; do
		args+=(-section "$(row_label "$row")")
		for b in tern mosquitto; do
			cp "$work/$row.$b.json" "$REPORT/$row.$b.json" 2>/dev/null || true
			args+=("$b=$REPORT/$row.$b.json")
			case $(row_kind "$row") in
			mem | mem-tls)
				read -r bc _ <<<"$(mem_fields "$row" "$b")"
				args+=(-x "RSS B/conn=$bc")
				;;
			*)
				read -r _ _ _ _ cpu rss w <<<"$(fields "$row" "$b")"
				args+=(-x "cpu%=$cpu" -x "+RSS=$((rss / 1024))MiB")
				[ "$(row_kind "$row")" = durable ] && args+=(-x "written B/msg=$(per_msg "$w" "$row" "$b")")
				;;
			esac
		done
	done
	args+=(-note "rate: messages received per second (pub, fanout-durable: acknowledged per second; conn, mem: connections per second, connect latency, loss = connected/attempted). cpu%: the broker's CPU time over the run, in % of one core; +RSS: its peak resident memory growth during the run; RSS B/conn: its RSS growth per idle connection."
		-note "Both brokers and the load generator share this machine: run it more than once and look at the spread. Rows without -r flood, so their latencies are mostly queueing; the paced rows compare latency at equal load.")
	"$work/htmlreport" "${args[@]}"
	echo "report: $REPORT/index.html" >&2
fi
