# lib.sh: what compare.sh and cluster.sh share; sourced, not run.

# ports_free PORT...: exit unless every loopback port is free.
ports_free() {
	for p in "$@"; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "port $p is in use: set the script's port variables to free ports" >&2
			exit 1
		fi
	done
}

# start_work NAME: a work directory ($work) removed at exit (KEEP=1 keeps
# it), the processes in $pids stopped at exit, and tern built ($tern).
start_work() {
	work=$(mktemp -d "${TMPDIR:-/tmp}/tern-$1.XXXXXX")
	pids=()
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	echo "building tern..." >&2
	go build -o "$work/tern" ./cmd/tern
	tern="$work/tern"
}

cleanup() {
	# Only the processes the script started, by their ids.
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ -n "${KEEP:-}" ]; then echo "results kept in $work" >&2; else rm -rf "$work"; fi
}

# scenario_args NAME: the tern bench arguments of a table row. Paced rows
# send RATE msg/s per p2p publisher, FAN_RATE (default RATE) per fanin and
# fanout publisher.
scenario_args() {
	local fan=${FAN_RATE:-$RATE}
	case $1 in
	fanin-q0) echo "fanin -c $CLIENTS -q 0" ;;
	fanin-q1) echo "fanin -c $CLIENTS -q 1" ;;
	fanout-q0) echo "fanout -c $CLIENTS -q 0" ;;
	fanout-q1) echo "fanout -c $CLIENTS -q 1" ;;
	p2p-q0) echo "p2p -c $PAIRS -q 0" ;;
	p2p-q1) echo "p2p -c $PAIRS -q 1" ;;
	p2p-q2) echo "p2p -c $PAIRS -q 2" ;;
	fanin-q0-paced) echo "fanin -c $CLIENTS -q 0 -r $fan" ;;
	fanin-q1-paced) echo "fanin -c $CLIENTS -q 1 -r $fan" ;;
	fanout-q0-paced) echo "fanout -c $CLIENTS -q 0 -r $fan" ;;
	fanout-q1-paced) echo "fanout -c $CLIENTS -q 1 -r $fan" ;;
	p2p-q0-paced) echo "p2p -c $PAIRS -q 0 -r $RATE" ;;
	p2p-q1-paced) echo "p2p -c $PAIRS -q 1 -r $RATE" ;;
	pub-q0) echo "pub -c $CLIENTS -q 0" ;;
	pub-q1) echo "pub -c $CLIENTS -q 1" ;;
	conn) echo "conn -c $CONNS" ;;
	*) echo "unknown scenario $1" >&2; exit 2 ;;
	esac
}

# cpu_ticks PID...: user+system clock ticks the processes have used.
cpu_ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
hz=$(getconf CLK_TCK)

# ms MICROSECONDS: a short human form.
ms() {
	awk -v u="$1" 'BEGIN { if (u == "-") print "-"; else if (u >= 1e6) printf "%.2fs\n", u / 1e6; else if (u >= 1000) printf "%.2fms\n", u / 1000; else printf "%.0fµs\n", u }'
}
