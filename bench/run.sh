#!/usr/bin/env bash
# run.sh: compare the Stateroom server (bench/relayserver) with the gorilla
# baseline (bench/hubserver), and the native relay with the same relay as a
# WebAssembly guest (relayserver --wasm), under `stateroom bench`, and print
# a table.
#
# Each scenario gets a fresh server pinned to one core (SERVER_CORE, default 0)
# while the tool runs on another (TOOL_CORE, default 1). Every tool run is
# bounded by --duration and the whole script by `timeout`.
#
#   bench/run.sh                 # everything, a few minutes
#   SCENARIOS="fanout1 churn" bench/run.sh
#   RAW=/tmp/bench.jsonl bench/run.sh   # keep every JSON report
#   SCENARIOS="fanout1 fanout100" SERVERS="stateroom wasm wasm-budget" ROUNDS=3 bench/run.sh
#   PROFILES=/tmp/prof SCENARIOS=churn bench/run.sh   # a CPU profile per server run
#   BEFORE=c41e269 SERVERS="before stateroom gorilla" ROUNDS=3 bench/run.sh   # a change against its parent
#
# Scenarios: fanout1 (1 room x 50 clients), fanout100 (100 rooms x 10
# clients), conns10k, conns20k (idle connections; 20k is capped by the
# open-file limit, see below), churn (fresh rooms: connect, round trip, close).
#
# Servers: stateroom (the native Go relay), gorilla (the baseline hub), wasm
# (bench/relay/relay.wat through wasmhost, no event budget) and wasm-budget
# (the same under wasmhost's default event budget). By default the fanout
# scenarios run on all four and the others on stateroom and gorilla; SERVERS
# picks the servers of every scenario. ROUNDS (default 1) repeats the whole
# set, servers alternating within each scenario, so that a drift of the
# machine hits every server alike; the fan-out summary then takes medians.
# FANOUT1_MESSAGES (default 8000) and FANOUT100_MESSAGES (default 1000) are
# the messages per sender of fanout1 and fanout100. PROFILES, a directory,
# makes every server write a CPU profile of its run there
# (SERVER-SCENARIO-ROUND.prof; read it with go tool pprof BINARY FILE). The
# "kernel %" column is the share of the server's CPU time spent in the
# kernel (system time), which no change to the server's Go code removes.
# BEFORE, a git revision, adds the server "before": bench/relayserver built
# from that revision (in a temporary worktree), to measure a change against
# its parent in the same run.
set -euo pipefail

cd "$(dirname "$0")/.."
SERVER_CORE=${SERVER_CORE:-0}
TOOL_CORE=${TOOL_CORE:-1}
SCENARIOS=${SCENARIOS:-"fanout1 fanout100 conns10k conns20k churn"}
SERVERS=${SERVERS:-}
ROUNDS=${ROUNDS:-1}
FANOUT1_MESSAGES=${FANOUT1_MESSAGES:-8000}
FANOUT100_MESSAGES=${FANOUT100_MESSAGES:-1000}
RELAY_ADDR=127.0.0.1:18080
HUB_ADDR=127.0.0.1:18081
BIN=$(mktemp -d)
RAW=${RAW:-$BIN/reports.jsonl}
: >"$RAW"

SERVER_PID=
cleanup() {
	if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

echo "building into $BIN" >&2
go build -o "$BIN/relayserver" ./bench/relayserver
go build -o "$BIN/hubserver" ./bench/hubserver
go build -o "$BIN/stateroom" ./cmd/stateroom
if [[ -n ${BEFORE:-} ]]; then
	git worktree add --quiet --detach "$BIN/before-src" "$BEFORE"
	(cd "$BIN/before-src" && go build -o "$BIN/relayserver-before" ./bench/relayserver)
	git worktree remove --force "$BIN/before-src"
fi

# Both processes need a descriptor per connection: take the hard limit.
ulimit -n "$(ulimit -Hn)"
FDS=$(ulimit -n)

# start_server NAME SCENARIO: starts the server pinned to SERVER_CORE,
# waits until it accepts connections, and sets SERVER_PID and URL.
start_server() {
	local prof=()
	if [[ -n ${PROFILES:-} ]]; then
		mkdir -p "$PROFILES"
		prof=(--cpuprofile "$PROFILES/$1-$2-$round.prof")
	fi
	case $1 in
	stateroom)
		taskset -c "$SERVER_CORE" "$BIN/relayserver" --addr "$RELAY_ADDR" --end-empty-rooms "${prof[@]}" 2>"$BIN/server.log" &
		URL=ws://$RELAY_ADDR/ws ;;
	wasm)
		taskset -c "$SERVER_CORE" "$BIN/relayserver" --addr "$RELAY_ADDR" --end-empty-rooms --wasm "${prof[@]}" 2>"$BIN/server.log" &
		URL=ws://$RELAY_ADDR/ws ;;
	wasm-budget)
		taskset -c "$SERVER_CORE" "$BIN/relayserver" --addr "$RELAY_ADDR" --end-empty-rooms --wasm --wasm-budget "${prof[@]}" 2>"$BIN/server.log" &
		URL=ws://$RELAY_ADDR/ws ;;
	before) # the revision BEFORE may predate --cpuprofile: no profile
		[[ -x $BIN/relayserver-before ]] || { echo "server before needs BEFORE=<git revision>" >&2; exit 2; }
		taskset -c "$SERVER_CORE" "$BIN/relayserver-before" --addr "$RELAY_ADDR" --end-empty-rooms 2>"$BIN/server.log" &
		URL=ws://$RELAY_ADDR/ws ;;
	gorilla)
		taskset -c "$SERVER_CORE" "$BIN/hubserver" --addr "$HUB_ADDR" "${prof[@]}" 2>"$BIN/server.log" &
		URL=ws://$HUB_ADDR/ws ;;
	*) echo "unknown server $1; use stateroom, gorilla, wasm, wasm-budget or before" >&2; exit 2 ;;
	esac
	SERVER_PID=$!
	local hostport=${URL#ws://}; hostport=${hostport%/ws}
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "server $1 did not start; its log:" >&2; cat "$BIN/server.log" >&2; exit 1
}

stop_server() {
	kill "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
}

# bench SERVER SCENARIO ARGS...: one tool run against a fresh server; the
# JSON report goes to RAW tagged with the server, scenario and round.
bench() {
	local server=$1 scenario=$2; shift 2
	start_server "$server" "$scenario"
	echo "== round $round: $scenario on $server: stateroom bench $*" >&2
	local out
	if ! out=$(timeout 300 taskset -c "$TOOL_CORE" "$BIN/stateroom" bench "$@" --url "$URL" --server-pid "$SERVER_PID" --json); then
		echo "   (run failed; see the summary above)" >&2
	fi
	stop_server
	if [[ -n $out ]]; then jq -c --arg s "$server" --arg sc "$scenario" --argjson r "$round" '. + {server: $s, scenario: $sc, round: $r}' <<<"$out" >>"$RAW"; fi
}

CONNS20K=$(( FDS - 100 < 20000 ? FDS - 100 : 20000 ))
for round in $(seq "$ROUNDS"); do
for sc in $SCENARIOS; do
	servers=$SERVERS
	if [[ -z $servers ]]; then
		case $sc in
		fanout*) servers="stateroom wasm wasm-budget gorilla" ;;
		*) servers="stateroom gorilla" ;;
		esac
	fi
	for server in $servers; do
		case $sc in
		fanout1) bench $server "$sc" fanout --rooms 1 --clients 50 --senders 5 --window 32 --messages "$FANOUT1_MESSAGES" --stall 30s --duration 120s ;;
		fanout100) bench $server "$sc" fanout --rooms 100 --clients 10 --senders 1 --window 16 --messages "$FANOUT100_MESSAGES" --stall 30s --duration 60s ;;
		conns10k) bench $server "$sc" conns --conns 10000 --rooms 100 --concurrency 64 --hold 3s --duration 120s ;;
		conns20k) bench $server "$sc" conns --conns "$CONNS20K" --rooms 100 --concurrency 64 --hold 3s --duration 120s ;;
		churn) bench $server "$sc" churn --rooms 5000 --concurrency 16 --duration 60s ;;
		*) echo "unknown scenario $sc" >&2; exit 2 ;;
		esac
	done
done
done

echo
echo "server on core $SERVER_CORE, tool on core $TOOL_CORE; open-file limit $FDS (conns20k runs $CONNS20K connections)"
jq -rs '
	def f(x; d): if x == null then "-" else (x * pow(10; d) | round / pow(10; d) | tostring) end;
	(["scenario", "round", "server", "frames/s", "cpu ns/frame", "rtt p50 us", "rtt p99 us", "conns/s", "RSS B/conn", "rooms/s", "cpu us/room", "kernel %", "reply p99 us", "tool cpu s", "check"] | @tsv),
	(.[] | [
		.scenario, (.round | tostring), .server,
		f(.frames_per_s; 0), f(.server_cpu_per_frame_ns; 0), f(.rtt.p50_us; 0), f(.rtt.p99_us; 0),
		f(.conns_per_s; 0), f(.rss_per_conn; 0),
		f(.rooms_per_s; 0), f(.server_cpu_per_room_us; 1),
		(if (.server_cpu_s // 0) > 0 then f(100 * (.server_sys_cpu_s // 0) / .server_cpu_s; 0) else "-" end),
		f(.first_reply.p99_us; 0),
		f(.tool_cpu_s; 2),
		(if .mode == "fanout" then (if (.lost + .duplicates + .reordered) == 0 then "ok" else "FAILED" end) else "-" end)
	] | @tsv)' "$RAW" | column -t -s $'\t'

# The fan-out summary: medians over the rounds, and each server's ratio to
# the native relay (stateroom) of the same scenario, as the median of the
# per-round ratios: the servers of a round ran back to back, so pairing
# them cancels the machine's drift between rounds.
if jq -e -s 'any(.[]; .mode == "fanout")' "$RAW" >/dev/null; then
	echo
	echo "fan-out medians over $ROUNDS round(s); ratios to the native relay (stateroom) are medians of per-round ratios"
	jq -rs '
		def median: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
		def f(x; d): if x == null then "-" else (x * pow(10; d) | round / pow(10; d) | tostring) end;
		[.[] | select(.mode == "fanout")] | group_by(.scenario) | .[] |
		(map(select(.server == "stateroom") | {key: (.round | tostring), value: .}) | from_entries) as $native |
		group_by(.server) | .[] |
		{scenario: .[0].scenario, server: .[0].server, runs: length,
		 fps: (map(.frames_per_s) | median), cpu: (map(.server_cpu_per_frame_ns) | median),
		 fps_ratio: (map(select($native[.round | tostring].frames_per_s) | .frames_per_s / $native[.round | tostring].frames_per_s) | median),
		 cpu_ratio: (map(select(.server_cpu_per_frame_ns and $native[.round | tostring].server_cpu_per_frame_ns) | .server_cpu_per_frame_ns / $native[.round | tostring].server_cpu_per_frame_ns) | median),
		 clean: all(.[]; (.lost + .duplicates + .reordered) == 0)} |
		[.scenario, .server, (.runs | tostring), f(.fps; 0), f(.cpu; 0), f(.fps_ratio; 3), f(.cpu_ratio; 3),
		 (if .clean then "ok" else "FAILED" end)] | @tsv' "$RAW" |
		(printf 'scenario\tserver\truns\tframes/s\tcpu ns/frame\tframes/s vs native\tcpu/frame vs native\tcheck\n'; cat) | column -t -s $'\t'
fi
echo
echo "raw reports: $RAW"
